//! What the Users page shows (accounts, groups and their price ratios, redemption codes,
//! invitations, the registration settings) and the forms it sends, as text typed: the
//! console parses it and gateway-core's rules decide.

use super::InvitationRow;

/// Everything the Users page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsersData {
    pub users: Vec<UserRow>,
    pub groups: Vec<GroupRow>,
    /// Newest first.
    pub codes: Vec<CodeRow>,
    /// Every code as CSV (the CLI's `redemption list --csv` format), for Copy.
    pub codes_csv: String,
    /// Only the codes that can still be redeemed, as CSV.
    pub unused_codes_csv: String,
    /// Everyone's invitations, newest first.
    pub invitations: Vec<InvitationRow>,
    pub governance: GovernanceForm,
    /// Where "Save as a file" writes the CSV.
    pub exports_dir: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
    pub group: String,
    /// What is left to spend (`$1.50`), or `unlimited`.
    pub balance: String,
    pub unlimited: bool,
    pub spent: String,
    pub enabled: bool,
    /// The inviter's name, when the account came by invitation.
    pub invited_by: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupRow {
    pub name: String,
    /// The price multiplier (`1`, `0.8`).
    pub ratio: String,
    pub description: String,
    pub users: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CodeRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub amount: String,
    /// `unused`, `used` or `expired`.
    pub state: String,
    pub expires: String,
    /// Who redeemed it (name), when used.
    pub redeemed_by: String,
    pub created: String,
}

/// A new account.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUserForm {
    pub username: String,
    pub password: String,
    pub email: String,
    /// `user` or `admin`.
    pub role: String,
    pub group: String,
    /// USD; empty: the new-user balance; `-1`: unlimited.
    pub balance_usd: String,
}

impl Default for NewUserForm {
    fn default() -> Self {
        NewUserForm {
            username: String::new(),
            password: String::new(),
            email: String::new(),
            role: "user".into(),
            group: "default".into(),
            balance_usd: String::new(),
        }
    }
}

/// How a balance changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceHow {
    Add,
    Subtract,
    /// Set what is left to spend (`-1`: unlimited).
    Set,
}

/// A group and its price ratio (saving an existing name changes it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupForm {
    pub name: String,
    pub ratio: String,
    pub description: String,
}

/// A batch of redemption codes.
#[derive(Debug, Clone, PartialEq)]
pub struct RedemptionForm {
    pub name: String,
    pub amount_usd: String,
    pub count: String,
    /// Days from now; empty: never.
    pub expires_days: String,
}

impl Default for RedemptionForm {
    fn default() -> Self {
        RedemptionForm {
            name: String::new(),
            amount_usd: String::new(),
            count: "1".into(),
            expires_days: String::new(),
        }
    }
}

/// An invitation from the admin.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationForm {
    /// 0: unlimited.
    pub max_uses: String,
    /// Days from now; empty: never.
    pub expires_days: String,
}

impl Default for InvitationForm {
    fn default() -> Self {
        InvitationForm {
            max_uses: "1".into(),
            expires_days: String::new(),
        }
    }
}

/// The governance settings as the form shows them (USD as text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GovernanceForm {
    /// `open`, `invite_only` or `closed`.
    pub registration: String,
    /// `-1`: unlimited.
    pub new_user_balance_usd: String,
    pub inviter_reward_usd: String,
    pub invitee_reward_usd: String,
    pub user_invite_max_uses: String,
    pub allow_unpriced_cloud: bool,
}

//! The protocol layer's pieces the workspace's tests reach directly: the golden tests
//! (`tests/golden.rs`) run the conversions and answer stages on the providers' documented
//! examples, and the fake providers frame their answers as the real ones do. The rest of
//! the protocol layer (`wire`, `ingress`, `upstream`) stays private to the crate.

pub use crate::ingress::anthropic::{ToAnthropic, messages_to_chat, messages_to_chat_with};
pub use crate::ingress::responses::responses_to_chat_with;
pub use crate::upstream::anthropic::{FromAnthropic, chat_to_messages};
pub use crate::upstream::bedrock::{body as bedrock_body, encode_frame};
pub use crate::upstream::gemini::FromGemini;
pub use crate::wire::{Pipeline, Stage};

//! What an ingress conversion decided that the answer's conversion and the response
//! headers need to know: tools the channel cannot run (dropped, named in
//! `x-burncloud-dropped-tools`) and tool names flattened on the way in (mapped back in the
//! answer). Shared by the Anthropic and Responses ingresses.

use serde_json::{Value, json};

/// The response header naming the tools a request offered that the serving channel could
/// not run (comma list of their types).
pub const DROPPED_TOOLS_HEADER: &str = "x-burncloud-dropped-tools";

/// One tool of a Responses `namespace`, offered upstream as a plain function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatName {
    /// The name the upstream sees (`<namespace>__<name>`).
    pub flat: String,
    pub namespace: String,
    pub name: String,
}

/// The side facts of one converted request.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// Types of the hosted/server tools left out (in the order offered, no repeats).
    pub dropped_tools: Vec<String>,
    /// Namespaced tools flattened into functions.
    pub flat_names: Vec<FlatName>,
    /// Custom (free-form input) tools offered as functions taking `{"input": string}`;
    /// their calls go back as custom tool calls.
    pub custom_tools: Vec<String>,
}

impl Conversion {
    pub fn drop_tool(&mut self, ty: &str) {
        if !self.dropped_tools.iter().any(|t| t == ty) {
            self.dropped_tools.push(ty.to_string());
        }
    }

    /// The flat name for `namespace` + `name`, remembered for the way back.
    pub fn flatten(&mut self, namespace: &str, name: &str) -> String {
        let flat = format!("{namespace}__{name}");
        if !self.flat_names.iter().any(|f| f.flat == flat) {
            self.flat_names.push(FlatName {
                flat: flat.clone(),
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        flat
    }

    /// `(namespace, name)` of a flat name the upstream called, if it was flattened.
    pub fn unflatten(&self, flat: &str) -> Option<(&str, &str)> {
        self.flat_names
            .iter()
            .find(|f| f.flat == flat)
            .map(|f| (f.namespace.as_str(), f.name.as_str()))
    }

    /// Whether `name` is a custom tool offered as a function.
    pub fn is_custom(&self, name: &str) -> bool {
        self.custom_tools.iter().any(|t| t == name)
    }

    /// The header value naming the dropped tools, if any.
    pub fn dropped_header(&self) -> Option<String> {
        (!self.dropped_tools.is_empty()).then(|| self.dropped_tools.join(","))
    }
}

/// Every `system` message's text joined into one leading system message, the others in
/// their order. Clients put system/developer messages mid-conversation (Claude Code's
/// environment block, Codex's developer messages); many chat templates of local models
/// accept a system message only first, and every upstream accepts one there.
pub fn hoist_system(messages: Vec<Value>) -> Vec<Value> {
    let mut system: Vec<String> = Vec::new();
    let mut rest = Vec::with_capacity(messages.len());
    for m in messages {
        if m["role"] == "system" {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            if !text.is_empty() {
                system.push(text);
            }
        } else {
            rest.push(m);
        }
    }
    if system.is_empty() {
        return rest;
    }
    let mut out = Vec::with_capacity(rest.len() + 1);
    out.push(json!({"role": "system", "content": system.join("\n\n")}));
    out.extend(rest);
    out
}

/// OpenAI's `reasoning_effort` values; stronger names from newer clients (`max`, `xhigh`)
/// become `high`, unknown ones are left out.
pub fn reasoning_effort(effort: &str) -> Option<&'static str> {
    match effort {
        "minimal" => Some("minimal"),
        "low" => Some("low"),
        "medium" => Some("medium"),
        "high" | "xhigh" | "max" => Some("high"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_messages_are_hoisted_into_one() {
        let msgs = vec![
            json!({"role": "system", "content": "a"}),
            json!({"role": "user", "content": "hi"}),
            json!({"role": "system", "content": [{"type": "text", "text": "b"}]}),
            json!({"role": "assistant", "content": "yo"}),
        ];
        let out = hoist_system(msgs);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], json!({"role": "system", "content": "a\n\nb"}));
        assert_eq!(out[1]["role"], "user");
        assert_eq!(out[2]["role"], "assistant");
    }

    #[test]
    fn flat_names_map_back() {
        let mut c = Conversion::default();
        assert_eq!(c.flatten("ns", "f"), "ns__f");
        assert_eq!(c.flatten("ns", "f"), "ns__f");
        assert_eq!(c.flat_names.len(), 1);
        assert_eq!(c.unflatten("ns__f"), Some(("ns", "f")));
        assert_eq!(c.unflatten("f"), None);
        c.drop_tool("web_search");
        c.drop_tool("web_search");
        c.drop_tool("mcp");
        assert_eq!(c.dropped_header().as_deref(), Some("web_search,mcp"));
    }
}

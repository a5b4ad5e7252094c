//! Answers as Markdown: CommonMark (with tables and strikethrough) to HTML, with fenced
//! and indented code blocks split out so each gets its own Copy button. Raw HTML in an
//! answer is shown as text, never run or rendered: a model's output is not trusted.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd, html};

/// A piece of an answer: Markdown rendered to HTML, or a code block.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Html(String),
    Code { lang: String, text: String },
}

/// Split `text` into rendered Markdown and code blocks, in order.
pub fn segments(text: &str) -> Vec<Segment> {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut out = Vec::new();
    let mut pending: Vec<Event<'_>> = Vec::new();
    let mut code: Option<(String, String)> = None;
    let flush = |pending: &mut Vec<Event<'_>>, out: &mut Vec<Segment>| {
        if pending.is_empty() {
            return;
        }
        let mut s = String::new();
        html::push_html(&mut s, pending.drain(..));
        out.push(Segment::Html(s));
    };
    for event in Parser::new_ext(text, opts) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                flush(&mut pending, &mut out);
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.split_whitespace().next().unwrap_or("").into(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, text)) = code.take() {
                    out.push(Segment::Code { lang, text });
                }
            }
            Event::Text(t) if code.is_some() => {
                if let Some((_, text)) = code.as_mut() {
                    text.push_str(&t);
                }
            }
            // Raw HTML from the model: as text.
            Event::Html(h) | Event::InlineHtml(h) => pending.push(Event::Text(h)),
            other => pending.push(other),
        }
    }
    // An answer cut off inside a code block (still streaming, or stopped).
    if let Some((lang, text)) = code.take() {
        out.push(Segment::Code { lang, text });
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_split_out_and_html_is_text() {
        let s = segments(
            "Here is **bold** <script>alert(1)</script>\n\n```rust\nfn main() {}\n```\n\nAfter <b>x</b>.",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        let Segment::Html(first) = &s[0] else {
            panic!("{s:?}")
        };
        assert!(first.contains("<strong>bold</strong>"));
        assert!(first.contains("&lt;script&gt;") && !first.contains("<script>"));
        assert_eq!(
            s[1],
            Segment::Code {
                lang: "rust".into(),
                text: "fn main() {}\n".into()
            }
        );
        let Segment::Html(last) = &s[2] else {
            panic!("{s:?}")
        };
        assert!(last.contains("&lt;b&gt;x&lt;/b&gt;"), "{last}");
    }

    #[test]
    fn an_unfinished_code_block_is_still_a_code_block() {
        let s = segments("Start:\n\n```py\nprint(1)\n");
        assert!(
            matches!(&s[1], Segment::Code { lang, text } if lang == "py" && text == "print(1)\n")
        );
    }
}

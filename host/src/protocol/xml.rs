//! Coordinator → teammate messages as XML:
//! `<team_lead v="1" teammate_id="lint-1" color="blue" summary="scan src">text</team_lead>`.
//!
//! Written and parsed with quick-xml. Every attribute value and the text are
//! escaped on the way out; on the way in only the five predefined entities and
//! character references are accepted. DOCTYPE, processing instructions,
//! comments, nested elements and unknown attributes are rejected, and the
//! whole message is capped at [`MAX_XML_BYTES`].

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{ProtocolError, VERSION};

/// Size cap of one XML message, in bytes.
pub const MAX_XML_BYTES: usize = 256 * 1024;

const ROOT: &str = "team_lead";

/// A message from the team lead to one teammate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamLeadMessage {
    /// The addressee's teammate id.
    pub teammate_id: String,
    /// The addressee's colour in the team view.
    pub color: Option<String>,
    /// A short summary for the team view.
    pub summary: Option<String>,
    /// The message text.
    pub text: String,
}

/// True for characters XML 1.0 cannot carry at all, not even as references.
fn forbidden_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Escapes `value`; `attr` also turns whitespace that attribute-value
/// normalisation would destroy into character references.
fn escape_into(out: &mut String, field: &str, value: &str, attr: bool) -> Result<(), ProtocolError> {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if forbidden_char(c) => {
                return Err(ProtocolError::InvalidField {
                    field: field.to_string(),
                    reason: format!("control character U+{:04X} cannot be sent in XML", c as u32),
                });
            }
            c => out.push(c),
        }
    }
    Ok(())
}

impl TeamLeadMessage {
    /// Encodes the message. Fails only for characters XML cannot carry
    /// (NUL and other C0 controls besides tab, CR, LF), or if the result is
    /// larger than [`MAX_XML_BYTES`].
    pub fn encode(&self) -> Result<String, ProtocolError> {
        let mut out = String::with_capacity(64 + self.text.len());
        out.push_str("<team_lead v=\"");
        out.push_str(&VERSION.to_string());
        out.push_str("\" teammate_id=\"");
        escape_into(&mut out, "teammate_id", &self.teammate_id, true)?;
        out.push('"');
        if let Some(color) = &self.color {
            out.push_str(" color=\"");
            escape_into(&mut out, "color", color, true)?;
            out.push('"');
        }
        if let Some(summary) = &self.summary {
            out.push_str(" summary=\"");
            escape_into(&mut out, "summary", summary, true)?;
            out.push('"');
        }
        out.push('>');
        escape_into(&mut out, "text", &self.text, false)?;
        out.push_str("</team_lead>");
        if out.len() > MAX_XML_BYTES {
            return Err(ProtocolError::TooLarge { limit: MAX_XML_BYTES, actual: out.len() });
        }
        Ok(out)
    }

    /// Parses one message, strictly.
    pub fn decode(input: &str) -> Result<Self, ProtocolError> {
        if input.len() > MAX_XML_BYTES {
            return Err(ProtocolError::TooLarge { limit: MAX_XML_BYTES, actual: input.len() });
        }
        let mut reader = Reader::from_str(input);
        reader.config_mut().trim_text(false);
        let malformed = |e: quick_xml::Error, pos: u64| ProtocolError::Malformed(format!("{e} at byte {pos}"));

        // Prologue: an optional XML declaration and whitespace, then the root.
        let start = loop {
            let pos = reader.buffer_position();
            match reader.read_event().map_err(|e| malformed(e, pos))? {
                Event::Decl(_) => continue,
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                Event::Start(s) => break s,
                Event::Empty(_) => return Err(ProtocolError::Malformed("<team_lead/> has no text".into())),
                Event::Eof => return Err(ProtocolError::Malformed("empty input".into())),
                other => return Err(forbidden(&other)),
            }
        };
        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        if name != ROOT {
            return Err(ProtocolError::UnknownType(name));
        }

        let (mut version, mut teammate_id, mut color, mut summary) = (None, None, None, None);
        for attr in start.attributes() {
            let attr = attr.map_err(|e| ProtocolError::Malformed(format!("attribute: {e}")))?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            let value = attr
                .unescape_value()
                .map_err(|e| ProtocolError::InvalidField { field: key.clone(), reason: e.to_string() })?
                .into_owned();
            let slot = match key.as_str() {
                "v" => &mut version,
                "teammate_id" => &mut teammate_id,
                "color" => &mut color,
                "summary" => &mut summary,
                _ => {
                    return Err(ProtocolError::InvalidField { field: key, reason: "unknown attribute".into() });
                }
            };
            if slot.replace(value).is_some() {
                return Err(ProtocolError::InvalidField { field: key, reason: "attribute given twice".into() });
            }
        }
        let version = version.ok_or(ProtocolError::MissingField("v"))?;
        if version != VERSION.to_string() {
            return Err(ProtocolError::UnsupportedVersion { found: version });
        }
        let teammate_id = teammate_id.ok_or(ProtocolError::MissingField("teammate_id"))?;

        let mut text = String::new();
        loop {
            let pos = reader.buffer_position();
            match reader.read_event().map_err(|e| malformed(e, pos))? {
                Event::Text(t) => text.push_str(&t.decode().map_err(|e| ProtocolError::Malformed(e.to_string()))?),
                Event::CData(c) => text.push_str(&c.decode().map_err(|e| ProtocolError::Malformed(e.to_string()))?),
                Event::GeneralRef(r) => text.push(resolve_ref(&r)?),
                Event::End(e) if e.name().as_ref() == ROOT.as_bytes() => break,
                Event::Eof => return Err(ProtocolError::Malformed("unclosed <team_lead>".into())),
                other => return Err(forbidden(&other)),
            }
        }
        // Epilogue: only whitespace may follow.
        loop {
            let pos = reader.buffer_position();
            match reader.read_event().map_err(|e| malformed(e, pos))? {
                Event::Eof => break,
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                other => return Err(forbidden(&other)),
            }
        }
        Ok(Self { teammate_id, color, summary, text })
    }
}

fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<char, ProtocolError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if !forbidden_char(c) => Ok(c),
            _ => Err(ProtocolError::Malformed("invalid character reference".into())),
        };
    }
    let name: &[u8] = r;
    match name {
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"amp" => Ok('&'),
        b"quot" => Ok('"'),
        b"apos" => Ok('\''),
        other => Err(ProtocolError::Forbidden(format!("entity reference &{};", String::from_utf8_lossy(other)))),
    }
}

fn forbidden(event: &Event<'_>) -> ProtocolError {
    let what = match event {
        Event::DocType(_) => "DOCTYPE".to_string(),
        Event::PI(_) => "processing instruction".to_string(),
        Event::Comment(_) => "comment".to_string(),
        Event::Decl(_) => "XML declaration after the start".to_string(),
        Event::Start(s) | Event::Empty(s) => {
            format!("element <{}> (team_lead carries text only)", String::from_utf8_lossy(s.name().as_ref()))
        }
        Event::End(e) => format!("unexpected </{}>", String::from_utf8_lossy(e.name().as_ref())),
        Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => "content outside <team_lead>".to_string(),
        Event::Eof => "end of input".to_string(),
    };
    ProtocolError::Forbidden(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(text: &str) -> TeamLeadMessage {
        TeamLeadMessage {
            teammate_id: "lint-1".into(),
            color: Some("blue".into()),
            summary: Some("scan src".into()),
            text: text.into(),
        }
    }

    #[test]
    fn encodes_the_documented_shape() {
        assert_eq!(
            msg("text").encode().unwrap(),
            r#"<team_lead v="1" teammate_id="lint-1" color="blue" summary="scan src">text</team_lead>"#
        );
    }

    #[test]
    fn escapes_markup_in_every_value() {
        let m = TeamLeadMessage {
            teammate_id: "a\"b".into(),
            color: Some("<red>".into()),
            summary: Some("x & y\nz".into()),
            text: "</team_lead><evil/>&amp;".into(),
        };
        let wire = m.encode().unwrap();
        assert!(!wire.contains("<evil/>"), "{wire}");
        assert_eq!(TeamLeadMessage::decode(&wire).unwrap(), m);
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let e = TeamLeadMessage::decode(
            r#"<!DOCTYPE x [<!ENTITY a "b">]><team_lead v="1" teammate_id="x">&a;</team_lead>"#,
        )
        .unwrap_err();
        assert!(matches!(e, ProtocolError::Forbidden(ref s) if s == "DOCTYPE"), "{e}");
        let e = TeamLeadMessage::decode(r#"<team_lead v="1" teammate_id="x">&xxe;</team_lead>"#).unwrap_err();
        assert!(matches!(e, ProtocolError::Forbidden(ref s) if s.contains("&xxe;")), "{e}");
    }

    #[test]
    fn rejects_wrong_version_unknown_root_and_attributes() {
        assert_eq!(
            TeamLeadMessage::decode(r#"<team_lead v="2" teammate_id="x">t</team_lead>"#).unwrap_err(),
            ProtocolError::UnsupportedVersion { found: "2".into() }
        );
        assert_eq!(
            TeamLeadMessage::decode(r#"<boss v="1">t</boss>"#).unwrap_err(),
            ProtocolError::UnknownType("boss".into())
        );
        assert_eq!(
            TeamLeadMessage::decode(r#"<team_lead teammate_id="x">t</team_lead>"#).unwrap_err(),
            ProtocolError::MissingField("v")
        );
        assert!(matches!(
            TeamLeadMessage::decode(r#"<team_lead v="1" teammate_id="x" admin="1">t</team_lead>"#),
            Err(ProtocolError::InvalidField { field, .. }) if field == "admin"
        ));
        assert!(matches!(
            TeamLeadMessage::decode(r#"<team_lead v="1" v="1" teammate_id="x">t</team_lead>"#),
            Err(ProtocolError::InvalidField { .. }) | Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_nesting_unclosed_trailing_and_oversized() {
        let nested = format!(r#"<team_lead v="1" teammate_id="x">{}</team_lead>"#, "<a>".repeat(10_000));
        assert!(matches!(TeamLeadMessage::decode(&nested), Err(ProtocolError::Forbidden(_))));
        assert!(matches!(
            TeamLeadMessage::decode(r#"<team_lead v="1" teammate_id="x">open"#),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            TeamLeadMessage::decode(r#"<team_lead v="1" teammate_id="x">t</team_lead><team_lead>"#),
            Err(ProtocolError::Forbidden(_)) | Err(ProtocolError::Malformed(_))
        ));
        let huge = format!(r#"<team_lead v="1" teammate_id="{}">t</team_lead>"#, "x".repeat(MAX_XML_BYTES));
        assert!(matches!(TeamLeadMessage::decode(&huge), Err(ProtocolError::TooLarge { limit: MAX_XML_BYTES, .. })));
        assert!(matches!(msg(&"y".repeat(MAX_XML_BYTES)).encode(), Err(ProtocolError::TooLarge { .. })));
    }

    #[test]
    fn refuses_to_encode_nul() {
        assert!(matches!(msg("a\0b").encode(), Err(ProtocolError::InvalidField { field, .. }) if field == "text"));
    }

    fn xml_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>().prop_filter("xml char", |c| !forbidden_char(*c)), 0..64)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn round_trips(id in xml_string(), color in proptest::option::of(xml_string()),
                       summary in proptest::option::of(xml_string()), text in xml_string()) {
            let m = TeamLeadMessage { teammate_id: id, color, summary, text };
            prop_assert_eq!(TeamLeadMessage::decode(&m.encode().unwrap()).unwrap(), m);
        }

        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,256}") {
            let _ = TeamLeadMessage::decode(&s);
        }
    }
}

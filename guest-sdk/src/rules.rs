//! A plugin describes its rules: [`describe_rules!`] embeds a TOML rule
//! table (`rules.toml` beside the plugin's `Cargo.toml`) in the component as
//! the custom section [`RULES_SECTION`]. swarm-host reads it from the
//! component file (no call into the guest, so it costs no instantiation
//! and works on every backend) and takes each rule's SARIF
//! `shortDescription`, `fullDescription` and `help` from it.
//!
//! The table is a list of `[[rule]]` entries, each with `id` (the rule id
//! the plugin's findings carry), `short` (one line: what was found), `full`
//! (what the rule checks) and `help` (how to resolve a finding):
//!
//! ```toml
//! [[rule]]
//! id = "long-line"
//! short = "Line too long"
//! full = "A line is longer than 100 characters."
//! help = "Wrap or shorten the line."
//! ```
//!
//! The host treats the text as untrusted: the section is at most 64 KiB and
//! 256 rules, each text one line of at most 1000 characters (cut with `…`),
//! control characters escaped; a table that breaks these rules or does not
//! parse is ignored with a warning in the report naming the plugin and what
//! was wrong.

/// The name of the custom section that carries a plugin's rule table.
pub const RULES_SECTION: &str = "swarm-rules";

/// Embeds the plugin's rule table in its component: `describe_rules!()`
/// takes `rules.toml` from the plugin crate's directory,
/// `describe_rules!("path/in/crate.toml")` another file of it. See
/// [`rules`](crate::rules) for the format.
#[macro_export]
macro_rules! describe_rules {
    () => {
        $crate::describe_rules!("rules.toml");
    };
    ($file:literal) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // A custom section, not code: `link_section` is an unsafe
            // attribute only because it could place code in one.
            #[allow(unsafe_code)]
            #[unsafe(link_section = "swarm-rules")]
            #[used]
            static SWARM_RULES: [u8; include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file)).len()] =
                *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file));
        };
    };
}

//! Which backend a run uses, decided once per run: `$TMUX` → tmux,
//! `TERM_PROGRAM=iTerm.app` → iTerm2, otherwise in-process; an explicit
//! choice overrides, and choosing a backend that cannot work here is an
//! error that says why.

/// A backend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Component instances inside the coordinator.
    InProcess,
    /// Headless native processes.
    Process,
    /// Native processes in tmux panes.
    Tmux,
    /// Native processes in iTerm2 panes.
    Iterm,
}

impl Kind {
    /// The name used by `--backend` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Process => "process",
            Self::Tmux => "tmux",
            Self::Iterm => "iterm",
        }
    }
}

/// A backend that was asked for but cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {backend} backend is not available: {why}")]
pub struct Unavailable {
    /// The backend.
    pub backend: &'static str,
    /// Why.
    pub why: String,
}

/// What the environment offers, read once.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$TMUX`.
    pub tmux: Option<String>,
    /// `$TMUX_PANE`.
    pub tmux_pane: Option<String>,
    /// `$TERM_PROGRAM`.
    pub term_program: Option<String>,
    /// `$ITERM_SESSION_ID`.
    pub iterm_session: Option<String>,
    /// Whether a `tmux` binary is on `$PATH`.
    pub has_tmux: bool,
    /// Whether an `osascript` binary is on `$PATH`.
    pub has_osascript: bool,
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl Env {
    /// This process's environment.
    pub fn current() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            tmux: var("TMUX"),
            tmux_pane: var("TMUX_PANE"),
            term_program: var("TERM_PROGRAM"),
            iterm_session: var("ITERM_SESSION_ID"),
            has_tmux: on_path("tmux"),
            has_osascript: on_path("osascript"),
        }
    }

    /// The automatic choice.
    pub fn detect(&self) -> Kind {
        if self.tmux.is_some() {
            Kind::Tmux
        } else if self.term_program.as_deref() == Some("iTerm.app") {
            Kind::Iterm
        } else {
            Kind::InProcess
        }
    }

    /// `choice` (`None` = automatic), checked against what is available.
    pub fn resolve(&self, choice: Option<Kind>) -> Result<Kind, Unavailable> {
        let kind = choice.unwrap_or_else(|| self.detect());
        let unavailable = |why: &str| Err(Unavailable { backend: kind.name(), why: why.to_string() });
        match kind {
            Kind::Tmux if self.tmux.is_none() => unavailable("not running inside tmux ($TMUX is not set)"),
            Kind::Tmux if self.tmux_pane.is_none() => {
                unavailable("$TMUX_PANE is not set, so the coordinator's window is unknown")
            }
            Kind::Tmux if !self.has_tmux => unavailable("no `tmux` program on $PATH"),
            Kind::Iterm if self.term_program.as_deref() != Some("iTerm.app") => {
                unavailable("not running inside iTerm2 (TERM_PROGRAM is not iTerm.app)")
            }
            Kind::Iterm if self.iterm_session.is_none() => unavailable("$ITERM_SESSION_ID is not set"),
            Kind::Iterm if !self.has_osascript => unavailable("no `osascript` program on $PATH (iTerm2 runs on macOS)"),
            _ => Ok(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmux_env() -> Env {
        Env {
            tmux: Some("/run/tmux/default,9,0".into()),
            tmux_pane: Some("%1".into()),
            has_tmux: true,
            ..Env::default()
        }
    }

    #[test]
    fn detection_prefers_tmux_then_iterm_then_in_process() {
        assert_eq!(Env::default().detect(), Kind::InProcess);
        let iterm = Env { term_program: Some("iTerm.app".into()), ..Env::default() };
        assert_eq!(iterm.detect(), Kind::Iterm);
        let both = Env { term_program: Some("iTerm.app".into()), ..tmux_env() };
        assert_eq!(both.detect(), Kind::Tmux);
        assert_eq!(Env { term_program: Some("Apple_Terminal".into()), ..Env::default() }.detect(), Kind::InProcess);
    }

    #[test]
    fn an_explicit_choice_overrides_detection() {
        assert_eq!(tmux_env().resolve(Some(Kind::Process)), Ok(Kind::Process));
        assert_eq!(tmux_env().resolve(Some(Kind::InProcess)), Ok(Kind::InProcess));
        assert_eq!(tmux_env().resolve(None), Ok(Kind::Tmux));
    }

    #[test]
    fn an_unavailable_choice_says_why() {
        let err = Env::default().resolve(Some(Kind::Tmux)).unwrap_err();
        assert_eq!(err.backend, "tmux");
        assert!(err.to_string().contains("not running inside tmux"), "{err}");
        let err = Env { has_tmux: false, ..tmux_env() }.resolve(None).unwrap_err();
        assert!(err.to_string().contains("no `tmux` program"), "{err}");
        let err = Env::default().resolve(Some(Kind::Iterm)).unwrap_err();
        assert!(err.to_string().contains("the iterm backend is not available: not running inside iTerm2"), "{err}");
        let mac =
            Env { term_program: Some("iTerm.app".into()), iterm_session: Some("w0t0p0:X".into()), ..Env::default() };
        assert!(mac.resolve(None).unwrap_err().to_string().contains("osascript"));
    }
}

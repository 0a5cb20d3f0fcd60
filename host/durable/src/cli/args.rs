//! The one small flag parser every client subcommand shares: `--flag VALUE`, `--flag=VALUE`
//! and boolean `--flag`, each at most once, no positional arguments.

use std::fmt;

/// A flag a subcommand accepts.
pub struct Flag {
    /// `--name`.
    pub name: &'static str,
    /// The placeholder of its value (`ID`), or `None` for a boolean switch.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

impl Flag {
    /// A flag taking a value.
    pub const fn value(name: &'static str, placeholder: &'static str, help: &'static str) -> Self {
        Flag {
            name,
            value: Some(placeholder),
            help,
        }
    }

    /// A boolean switch.
    pub const fn switch(name: &'static str, help: &'static str) -> Self {
        Flag {
            name,
            value: None,
            help,
        }
    }

    /// `--name VALUE` or `--name`.
    pub fn synopsis(&self) -> String {
        match self.value {
            Some(placeholder) => format!("{} {placeholder}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// A command line that does not fit the subcommand; exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a [`UsageError`].
pub fn usage_error(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// The flags given on one command line.
#[derive(Debug, Default)]
pub struct Parsed {
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
}

impl Parsed {
    /// The value of a flag, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(flag, _)| *flag == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of a flag, owned.
    pub fn owned(&self, name: &str) -> Option<String> {
        self.value(name).map(str::to_owned)
    }

    /// The value of a flag the subcommand cannot do without.
    pub fn required(&self, name: &str, placeholder: &str) -> Result<String, UsageError> {
        self.owned(name)
            .ok_or_else(|| usage_error(format!("missing required option {name} {placeholder}")))
    }

    /// Whether a boolean switch was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// Whether any of these flags was given.
    pub fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.value(name).is_some() || self.switch(name))
    }
}

/// Parses `args` against the flag sets; `Ok(None)` means `-h`/`--help` was asked for.
pub fn parse(
    flag_sets: &[&'static [Flag]],
    args: impl IntoIterator<Item = String>,
) -> Result<Option<Parsed>, UsageError> {
    let mut parsed = Parsed::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if !arg.starts_with("--") {
            return Err(usage_error(format!("unexpected argument {arg:?}")));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let flag = flag_sets
            .iter()
            .flat_map(|set| set.iter())
            .find(|flag| flag.name == name)
            .ok_or_else(|| usage_error(format!("unknown option {name}")))?;
        if parsed.any(&[flag.name]) {
            return Err(usage_error(format!("{} given more than once", flag.name)));
        }
        match flag.value {
            Some(placeholder) => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or_else(|| usage_error(format!("{name} needs a value: {name} {placeholder}")))?;
                parsed.values.push((flag.name, value));
            }
            None if inline.is_some() => return Err(usage_error(format!("{name} takes no value"))),
            None => parsed.switches.push(flag.name),
        }
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[Flag::value("--id", "ID", "the id"), Flag::switch("--json", "json")];

    fn run(args: &[&str]) -> Result<Option<Parsed>, UsageError> {
        parse(&[FLAGS], args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn values_come_separate_or_inline() {
        let parsed = run(&["--id", "a", "--json"]).unwrap().unwrap();
        assert_eq!(parsed.value("--id"), Some("a"));
        assert!(parsed.switch("--json"));
        let parsed = run(&["--id=b=c"]).unwrap().unwrap();
        assert_eq!(parsed.value("--id"), Some("b=c"));
        assert!(!parsed.switch("--json"));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(run(&["--nope"]).unwrap_err().0.contains("unknown option --nope"));
        assert!(run(&["--id"]).unwrap_err().0.contains("needs a value"));
        assert!(
            run(&["--id", "a", "--id", "b"])
                .unwrap_err()
                .0
                .contains("more than once")
        );
        assert!(run(&["--json=yes"]).unwrap_err().0.contains("takes no value"));
        assert!(run(&["stray"]).unwrap_err().0.contains("unexpected argument"));
        assert!(run(&["--id", "a", "--help"]).unwrap().is_none());
    }
}

//! `env_file`s, read the way `docker run --env-file` reads them, so that a file that works with
//! Docker works here unchanged:
//!
//! - one `KEY=VALUE` per line, split at the first `=`; the value is taken literally, to the end
//!   of the line: no quote removal, no `$VAR` substitution, no escapes, trailing spaces kept;
//! - leading whitespace is ignored; blank lines and lines starting with `#` are skipped;
//! - a line with only `KEY` takes `KEY`'s value from tiny-forge's own environment when it is set,
//!   and is skipped when it is not;
//! - a UTF-8 byte order mark at the start and `\r` line ends are dropped.
//!
//! A line without a key before `=`, or with whitespace in its key, is an error. Errors name the
//! file and line number and never show the line: an env file holds secrets, and a malformed line
//! may be one (`PASSWORD hunter2`).
//!
//! Hand-written on purpose: dotenv parsers (dotenvy) remove quotes, substitute `$VAR` and echo the
//! offending line in their errors.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

/// Why one line of an env file is unusable. Says nothing about the line's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// `=VALUE`: nothing before the `=`.
    NoKey,
    /// Whitespace or NUL in the key (`MY KEY=1`, or `PASSWORD hunter2` without any `=`).
    InvalidKey,
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// A key-only line whose variable is set in the environment, but not to UTF-8.
    EnvNotUtf8,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoKey => "no variable name before `=`; write KEY=VALUE",
            Self::InvalidKey => "the variable name holds whitespace; write KEY=VALUE with no space around `=`",
            Self::NotUtf8 => "not valid UTF-8",
            Self::EnvNotUtf8 => "names a variable whose value in tiny-forge's environment is not valid UTF-8",
        })
    }
}

/// One unusable line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// 1-based.
    pub(crate) line: usize,
    pub(crate) why: LineError,
}

/// Parses env-file `text`; `lookup` answers key-only lines. Returns the pairs in file order (a
/// later line wins when a key repeats), or every bad line.
pub(crate) fn parse(
    text: &[u8],
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<(String, String)>, Vec<BadLine>> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            errors.push(BadLine { line: n, why: LineError::NotUtf8 });
            continue;
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line, None),
        };
        if key.is_empty() {
            errors.push(BadLine { line: n, why: LineError::NoKey });
            continue;
        }
        if key.chars().any(|c| c.is_whitespace() || c == '\0') {
            errors.push(BadLine { line: n, why: LineError::InvalidKey });
            continue;
        }
        match value {
            Some(value) => pairs.push((key.to_owned(), value.to_owned())),
            None => match lookup(key).map(OsString::into_string) {
                Some(Ok(value)) => pairs.push((key.to_owned(), value)),
                Some(Err(_)) => errors.push(BadLine { line: n, why: LineError::EnvNotUtf8 }),
                None => {}
            },
        }
    }
    if errors.is_empty() { Ok(pairs) } else { Err(errors) }
}

/// Reads the env file at `path` (the config's `key`); every problem goes to `problems` as
/// `key: path:line: why`, never with a value.
pub(crate) fn read(path: &Path, key: &str, problems: &mut Vec<String>) -> Vec<(String, String)> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{key}: cannot read `{}`: {e}", path.display()));
            return Vec::new();
        }
    };
    parse(&text, |k: &str| std::env::var_os(k)).unwrap_or_else(|errors| {
        for BadLine { line, why } in errors {
            problems
                .push(format!("{key}: {}:{line}: {why} (the line is not shown: it may hold a secret)", path.display()));
        }
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text.as_bytes(), no_env).unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn dollar_signs_stay_literal() {
        assert_eq!(
            pairs("PATH_LIKE=$HOME/bin\nBRACED=${USER}x\nPRICE=$5\n"),
            vec![pair("PATH_LIKE", "$HOME/bin"), pair("BRACED", "${USER}x"), pair("PRICE", "$5")]
        );
    }

    #[test]
    fn quotes_and_backslashes_stay_literal() {
        assert_eq!(
            pairs("A=\"quoted\"\nB='single'\nC=\"unbalanced\nD=a\\nb\n"),
            vec![pair("A", "\"quoted\""), pair("B", "'single'"), pair("C", "\"unbalanced"), pair("D", "a\\nb")]
        );
    }

    #[test]
    fn the_value_is_everything_after_the_first_equals_sign_trailing_spaces_and_hashes_included() {
        assert_eq!(
            pairs("  URL=postgres://u:p@h/db?a=b  \nNOTE=not # a comment\nEMPTY=\n"),
            vec![pair("URL", "postgres://u:p@h/db?a=b  "), pair("NOTE", "not # a comment"), pair("EMPTY", "")]
        );
    }

    #[test]
    fn comments_blank_lines_crlf_and_a_byte_order_mark_are_skipped() {
        assert_eq!(
            pairs("\u{feff}# header\r\n\r\n   \n  # indented comment\nA=1\r\nB=2"),
            vec![pair("A", "1"), pair("B", "2")]
        );
    }

    #[test]
    fn a_key_alone_takes_the_environment_value_or_is_skipped() {
        let lookup = |k: &str| (k == "FROM_ENV").then(|| OsString::from("env value"));
        assert_eq!(
            parse(b"FROM_ENV\nNOT_SET\nA=1\n", lookup).unwrap(),
            vec![pair("FROM_ENV", "env value"), pair("A", "1")]
        );
    }

    #[test]
    fn bad_lines_are_all_reported_by_number() {
        let e = parse(b"A=1\n=novalue\nMY KEY=x\nPASSWORD hunter2\nB=\xff\n", no_env).unwrap_err();
        assert_eq!(
            e,
            [(2, LineError::NoKey), (3, LineError::InvalidKey), (4, LineError::InvalidKey), (5, LineError::NotUtf8)]
                .map(|(line, why)| BadLine { line, why })
        );
    }

    #[test]
    fn an_error_names_file_and_line_and_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.env");
        std::fs::write(&path, "OK=1\nDB_PASSWORD hunter2-s3cret\n=also-s3cret\n").unwrap();
        let mut problems = Vec::new();
        let got = read(&path, "projects.shop.stages.dev.env_file", &mut problems);
        assert!(got.is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        let file = path.display().to_string();
        assert!(problems[0].starts_with(&format!("projects.shop.stages.dev.env_file: {file}:2: ")), "{problems:?}");
        assert!(problems[1].contains(&format!("{file}:3: no variable name")), "{problems:?}");
        for p in &problems {
            assert!(!p.contains("s3cret") && !p.contains("hunter2") && !p.contains("DB_PASSWORD"), "{p}");
        }
    }

    #[test]
    fn a_missing_file_names_the_key_and_the_path() {
        let mut problems = Vec::new();
        read(Path::new("/nonexistent/tf.env"), "projects.shop.env_file", &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("projects.shop.env_file: cannot read `/nonexistent/tf.env`"), "{problems:?}");
    }
}

//! Where in the file a TOML or type error is: the serde error of `toml` gives a byte span and a
//! message, and these functions turn them into a [`ConfigError::Parse`] with line, column and,
//! where the line shows it, the key path.

use std::path::Path;

use super::ConfigError;

/// A TOML or type error, on one line, with where it is and (when the line is `key = value`)
/// the key path: toml's own message does not name the key whose value it refuses.
pub(super) fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let start = e.span().map_or(0, |s| s.start.min(text.len()));
    let start = within_table(text, start, e.message());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: e.span().and_then(|_| key_path_at(text, start)),
        message: e.message().replace('\n', " ").trim().to_owned(),
    }
}

/// Where in its table an error points, when the parser could only say "this table": a backend's
/// section (`[proxy]` with its `kind`) is read as a whole, so an unknown key, or a bad value,
/// comes back with the table header's position. The message names the key (`unknown field
/// `email``) or the value (`unknown variant `dns``, `string "x"`): the first line of the table
/// that holds it is where the error is.
fn within_table(text: &str, at: usize, message: &str) -> usize {
    if !text[at..].starts_with('[') {
        return at;
    }
    let quoted = |open: &str, close: char| {
        let i = message.find(open)? + open.len();
        let j = message[i..].find(close)? + i;
        Some(message[i..j].to_owned())
    };
    let unknown_key = quoted("unknown field `", '`');
    let bad_value = quoted("unknown variant `", '`').or_else(|| quoted("string \"", '"'));
    let body_start = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    let body_end = text[body_start..].find("\n[").map_or(text.len(), |i| body_start + i + 1);
    let mut offset = body_start;
    for line in text[body_start..body_end].split_inclusive('\n') {
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim();
            let after = &line[eq + 1..];
            let value_at = offset + eq + 1 + (after.len() - after.trim_start().len());
            if unknown_key.as_deref() == Some(key) {
                return offset + (line.len() - line.trim_start().len());
            }
            if bad_value.as_deref().is_some_and(|v| after.trim().trim_matches(['"', '\'']) == v) {
                return value_at;
            }
        }
        offset += line.len();
    }
    at
}

/// The key path of the value starting at byte `at`, when its line reads `key = value`: the
/// nearest table header above, then the key. `None` for anything fancier (inline tables,
/// arrays spanning lines), where the line and column still say where.
fn key_path_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let key = text[line_start..at].trim_end().strip_suffix('=')?.trim();
    let bare = |k: &str| !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.\"".contains(&c));
    if !bare(key) {
        return None;
    }
    let table = text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).and_then(|header| {
        let inner = header.trim_start_matches('[');
        inner.find(']').map(|end| inner[..end].trim().to_owned())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_path_of_a_value_comes_from_its_line_and_table() {
        let text = "[proxy]\nkind = \"nginx\"\n[projects.shop]\n  port   = 70000 # x\nenv = { A = 1 }\n";
        assert_eq!(key_path_at(text, text.find("\"nginx").unwrap()).as_deref(), Some("proxy.kind"));
        assert_eq!(key_path_at(text, text.find("70000").unwrap()).as_deref(), Some("projects.shop.port"));
        assert_eq!(key_path_at(text, text.find("1 }").unwrap()), None, "inside an inline table");
        assert_eq!(key_path_at("port = 0", 7).as_deref(), Some("port"), "top level");
        assert_eq!(key_path_at("[[notify]]\nformat = 1", 20).as_deref(), Some("notify.format"));
    }
}

//! The Rust blocks of the repository's Markdown files, compiled and run as doc tests
//! (`cargo test`), so the README and the Python mapping cannot drift from the crate.
//! Blocks that are not Rust are marked (`sh`, `text`, `toml`); the Rust ones are whole
//! programs with no hidden (`# `) lines, which GitHub would show as written.
//!
//! The tables name calls and error variants in inline code, which no compiler sees. Two
//! unit tests hold them to the source: every error variant named
//! (`Err(ConnError::Authentication(why))`) is declared by the crate with that shape
//! (unit, tuple or struct variant), and every function the shmring column of a table
//! calls (`.name(` or `::name(`) is a function of the crate (or of `std`, listed).

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/python-to-shmring.md")]
mod python_to_shmring {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    const FILES: [(&str, &str); 2] = [
        ("README.md", include_str!("../../../README.md")),
        (
            "docs/python-to-shmring.md",
            include_str!("../../../docs/python-to-shmring.md"),
        ),
    ];

    /// Functions of `std` the tables call.
    const STD_FNS: [&str; 4] = ["output", "pair", "piped", "unwrap_or_else"];

    /// How a variant is written: `E::V`, `E::V(..)` or `E::V { .. }`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Shape {
        Unit,
        Tuple,
        Struct,
    }

    fn is_ident(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }

    /// The shape of a variant from the text after its name.
    fn shape(after: &str) -> Shape {
        match after.trim_start().chars().next() {
            Some('(') => Shape::Tuple,
            Some('{') => Shape::Struct,
            _ => Shape::Unit,
        }
    }

    /// Every `SomethingError::Variant` in `code`, with its shape.
    fn variants(code: &str) -> BTreeSet<(String, Shape)> {
        let mut out = BTreeSet::new();
        for (at, _) in code.match_indices("Error::") {
            let start = code[..at].rfind(|c: char| !is_ident(c)).map_or(0, |i| i + 1);
            let rest = &code[at + "Error::".len()..];
            let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            if start == at || end == 0 {
                continue;
            }
            out.insert((
                format!("{}Error::{}", &code[start..at], &rest[..end]),
                shape(&rest[end..]),
            ));
        }
        out
    }

    /// (inline code outside fenced blocks, the Rust blocks) of a Markdown text.
    fn split(md: &str) -> (String, String) {
        let (mut inline, mut rust) = (String::new(), String::new());
        let mut fence: Option<bool> = None; // Some(is_rust) inside a fenced block
        for line in md.lines() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                fence = match fence {
                    Some(_) => None,
                    None => Some(matches!(info.trim(), "" | "rust")),
                };
                continue;
            }
            match fence {
                Some(true) => {
                    rust.push_str(line);
                    rust.push('\n');
                }
                Some(false) => {}
                None => {
                    for span in line.split('`').skip(1).step_by(2) {
                        inline.push_str(span);
                        inline.push('\n');
                    }
                }
            }
        }
        (inline, rust)
    }

    /// The text of every source file of the crate.
    fn source_files() -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read src/") {
                let p = e.expect("dir entry").path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(std::fs::read_to_string(&p).expect("read a source file"));
                }
            }
        }
        let mut files = Vec::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        walk(&src, &mut files);
        files
    }

    /// Every variant of every `pub enum ...Error` in the crate's source, with its shape.
    fn source_variants() -> BTreeSet<(String, Shape)> {
        let mut out = BTreeSet::new();
        for file in source_files() {
            let mut lines = file.lines();
            while let Some(line) = lines.next() {
                let Some(name) = line.strip_prefix("pub enum ") else {
                    continue;
                };
                let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                if !name.ends_with("Error") {
                    continue;
                }
                for l in lines.by_ref().take_while(|l| !l.starts_with('}')) {
                    let Some(v) = l
                        .strip_prefix("    ")
                        .filter(|v| v.starts_with(|c: char| c.is_ascii_uppercase()))
                    else {
                        continue;
                    };
                    let end = v.find(|c: char| !is_ident(c)).unwrap_or(v.len());
                    out.insert((format!("{name}::{}", &v[..end]), shape(&v[end..])));
                }
            }
        }
        out
    }

    /// The inline code of the second column (shmring's) of every table row outside
    /// fenced blocks (cells split at `|` not escaped as `\|`).
    fn shmring_column(md: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut fenced = false;
        for line in md.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced || !line.starts_with('|') {
                continue;
            }
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut prev = ' ';
            for c in line.chars() {
                if c == '|' && prev != '\\' {
                    cells.push(std::mem::take(&mut cell));
                } else {
                    cell.push(c);
                }
                prev = c;
            }
            if let Some(cell) = cells.get(2) {
                out.extend(cell.split('`').skip(1).step_by(2).map(str::to_owned));
            }
        }
        out
    }

    /// The names called in `code`: an identifier after `.` or `::`, before `(` or `::<`.
    fn called(code: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let b: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < b.len() {
            let after_sep = i > 0 && (b[i - 1] == '.' || (i > 1 && b[i - 1] == ':' && b[i - 2] == ':'));
            if after_sep && (b[i].is_ascii_lowercase() || b[i] == '_') {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let rest: String = b[i..].iter().collect();
                if rest.starts_with('(') || rest.starts_with("::<") {
                    out.insert(b[start..i].iter().collect());
                }
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn every_error_variant_named_in_the_docs_exists_with_that_shape() {
        let source = source_variants();
        assert!(source.contains(&("ConnError::Authentication".into(), Shape::Tuple)));
        let mut wrong = Vec::new();
        for (file, md) in FILES {
            let (inline, rust) = split(md);
            for v in variants(&inline).into_iter().chain(variants(&rust)) {
                if !source.contains(&v) {
                    wrong.push(format!("{file}: {} ({:?})", v.0, v.1));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "error variants in the docs that the crate does not have in that shape (unit `E::V`, \
             tuple `E::V(_)`, struct `E::V {{ .. }}`):\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_function_the_tables_call_exists() {
        let mut defined = BTreeSet::new();
        for file in source_files() {
            for (at, _) in file.match_indices("fn ") {
                defined.insert(file[at + 3..].chars().take_while(|&c| is_ident(c)).collect::<String>());
            }
        }
        assert!(defined.contains("lock_recover") && !defined.contains("no_such_fn"));
        let mut unknown = Vec::new();
        for (file, md) in FILES {
            for span in shmring_column(md) {
                for f in called(&span) {
                    if !defined.contains(&f) && !STD_FNS.contains(&f.as_str()) {
                        unknown.push(format!("{file}: {f} in `{span}`"));
                    }
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "functions named in the docs' tables that the crate does not define:\n{}",
            unknown.join("\n")
        );
    }

    #[test]
    fn the_extractors_see_shapes_columns_and_fences() {
        let md = "a `Err(E1Error::A(x))` and `F2Error::B { .. }` or `G3Error::C`\n\
                  ```sh\nH4Error::D\n```\n```rust\nlet _ = I5Error::E(1);\n```\n";
        let (inline, rust) = split(md);
        let names = |s: &str| variants(s).into_iter().collect::<Vec<_>>();
        assert_eq!(
            names(&inline),
            [
                ("E1Error::A".to_string(), Shape::Tuple),
                ("F2Error::B".to_string(), Shape::Struct),
                ("G3Error::C".to_string(), Shape::Unit)
            ]
        );
        assert_eq!(names(&rust), [("I5Error::E".to_string(), Shape::Tuple)]);

        let md = "| `a.py_call()` | `q.put(&x)?`, `Queue::<u8>::new(4)`, `x.f(\\|v\\| v)` | `d.other()` |\n\
                  ```text\n| `no.this()` | `nor.that()` |\n```\n";
        let calls: BTreeSet<String> = shmring_column(md).iter().flat_map(|s| called(s)).collect();
        assert_eq!(calls.into_iter().collect::<Vec<_>>(), ["f", "new", "put"]);
    }
}

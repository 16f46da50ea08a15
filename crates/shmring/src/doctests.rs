//! The Rust blocks of the repository's Markdown files, compiled and run as doc tests
//! (`cargo test`), so the README and the Python mapping cannot drift from the crate.
//! Blocks that are not Rust are marked (`sh`, `text`, `toml`); the Rust ones are whole
//! programs with no hidden (`# `) lines, which GitHub would show as written.
//!
//! The tables name error variants in inline code (`Err(ConnError::Authentication(why))`),
//! which no compiler sees: a unit test checks that the crate's source declares each one
//! with the same shape (unit, tuple or struct variant).

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

    /// How a variant is written: `E::V`, `E::V(..)` or `E::V { .. }`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Shape {
        Unit,
        Tuple,
        Struct,
    }

    /// Every `SomethingError::Variant` in `code`, with its shape.
    fn variants(code: &str) -> BTreeSet<(String, Shape)> {
        let mut out = BTreeSet::new();
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for (at, _) in code.match_indices("Error::") {
            let start = code[..at].rfind(|c: char| !ident(c)).map_or(0, |i| i + 1);
            let rest = &code[at + "Error::".len()..];
            let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
            if start == at || end == 0 {
                continue;
            }
            let after = rest[end..].trim_start_matches(' ');
            let shape = match after.chars().next() {
                Some('(') => Shape::Tuple,
                Some('{') => Shape::Struct,
                _ => Shape::Unit,
            };
            out.insert((format!("{}Error::{}", &code[start..at], &rest[..end]), shape));
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

    /// Every variant of every `pub enum ...Error` in the crate's source, with its shape.
    fn source_variants() -> BTreeSet<(String, Shape)> {
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
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut out = BTreeSet::new();
        for file in files {
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
                    let end = v.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(v.len());
                    let shape = match v[end..].trim_start().chars().next() {
                        Some('(') => Shape::Tuple,
                        Some('{') => Shape::Struct,
                        _ => Shape::Unit,
                    };
                    out.insert((format!("{name}::{}", &v[..end]), shape));
                }
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
    fn the_extractor_sees_shapes_and_fences() {
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
    }
}

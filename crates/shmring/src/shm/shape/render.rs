//! The human-readable rendering of a schema (`Point { x: i32, y: i32 }`), cut to
//! [`RENDERING_MAX`] bytes.

use super::RENDERING_MAX;
use postcard_schema::schema::{DataModelType, DataModelVariant, NamedType, NamedValue};

/// Writes a rendering, giving up past a budget (the result is cut anyway).
pub(super) struct Render {
    pub(super) out: String,
}

impl Render {
    /// Enough for [`RENDERING_MAX`] plus the `…`; deeper parts are skipped.
    const BUDGET: usize = RENDERING_MAX + 8;

    fn full(&self) -> bool {
        self.out.len() > Self::BUDGET
    }

    fn push(&mut self, s: &str) {
        if !self.full() {
            self.out.push_str(s);
        }
    }

    fn list(&mut self, ts: &[&NamedType], open: &str, close: &str) {
        self.push(open);
        for (i, t) in ts.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.ty(t);
        }
        if ts.len() == 1 && open == "(" && close == ")" {
            self.push(",");
        }
        self.push(close);
    }

    fn fields(&mut self, fields: &[&NamedValue]) {
        self.push(" { ");
        for (i, f) in fields.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.push(f.name);
            self.push(": ");
            self.ty(f.ty);
        }
        self.push(" }");
    }

    /// A container named like `Vec<T>` or `HashMap<K, V>`: its name before the `<`.
    fn container(name: &str) -> Option<&str> {
        name.split_once('<').map(|(head, _)| head).filter(|h| !h.is_empty())
    }

    pub(super) fn ty(&mut self, nt: &NamedType) {
        if self.full() {
            return;
        }
        match nt.ty {
            DataModelType::Bool => self.push("bool"),
            DataModelType::I8 => self.push("i8"),
            DataModelType::U8 => self.push("u8"),
            DataModelType::I16 => self.push("i16"),
            DataModelType::I32 => self.push("i32"),
            DataModelType::I64 => self.push("i64"),
            DataModelType::I128 => self.push("i128"),
            DataModelType::U16 => self.push("u16"),
            DataModelType::U32 => self.push("u32"),
            DataModelType::U64 => self.push("u64"),
            DataModelType::U128 => self.push("u128"),
            DataModelType::Usize => self.push("usize"),
            DataModelType::Isize => self.push("isize"),
            DataModelType::F32 => self.push("f32"),
            DataModelType::F64 => self.push("f64"),
            DataModelType::Char => self.push("char"),
            DataModelType::String => self.push("String"),
            DataModelType::ByteArray => self.push("bytes"),
            DataModelType::Unit => self.push("()"),
            DataModelType::Schema => self.push("Schema"),
            DataModelType::Option(t) => {
                self.push("Option<");
                self.ty(t);
                self.push(">");
            }
            DataModelType::Seq(t) => match Self::container(nt.name) {
                Some(head) => {
                    self.push(head);
                    self.push("<");
                    self.ty(t);
                    self.push(">");
                }
                None => {
                    self.push("[");
                    self.ty(t);
                    self.push("]");
                }
            },
            DataModelType::Map { key, val } => {
                self.push(Self::container(nt.name).unwrap_or("Map"));
                self.push("<");
                self.ty(key);
                self.push(", ");
                self.ty(val);
                self.push(">");
            }
            DataModelType::Tuple(ts) => {
                // An array `[T; N]` is a tuple of N times T on the wire.
                let same = ts.windows(2).all(|w| w[0] == w[1]);
                if nt.name.starts_with("[T; N]") && !ts.is_empty() && same {
                    self.push("[");
                    self.ty(ts[0]);
                    self.push(&format!("; {}]", ts.len()));
                } else {
                    self.list(ts, "(", ")");
                }
            }
            DataModelType::UnitStruct => self.push(nt.name),
            DataModelType::NewtypeStruct(t) => {
                self.push(nt.name);
                self.list(&[t], "(", ")");
                // A newtype reads `Name(T)`, not `Name(T,)`.
                if self.out.ends_with(",)") {
                    self.out.truncate(self.out.len() - 2);
                    self.out.push(')');
                }
            }
            DataModelType::TupleStruct(ts) => {
                self.push(nt.name);
                self.list(ts, "(", ")");
            }
            DataModelType::Struct(fields) => {
                self.push(nt.name);
                self.fields(fields);
            }
            DataModelType::Enum(vs) => {
                self.push("enum ");
                self.push(nt.name);
                self.push(" { ");
                for (i, v) in vs.iter().enumerate() {
                    if self.full() {
                        return;
                    }
                    if i > 0 {
                        self.push(", ");
                    }
                    self.push(v.name);
                    match v.ty {
                        DataModelVariant::UnitVariant => {}
                        DataModelVariant::NewtypeVariant(t) => {
                            self.push("(");
                            self.ty(t);
                            self.push(")");
                        }
                        DataModelVariant::TupleVariant(ts) => self.list(ts, "(", ")"),
                        DataModelVariant::StructVariant(fields) => self.fields(fields),
                    }
                }
                self.push(" }");
            }
        }
    }
}

/// `s` cut to at most [`RENDERING_MAX`] bytes at a character boundary, ending in `…`
/// when cut.
pub(super) fn bounded(mut s: String) -> String {
    if s.len() <= RENDERING_MAX {
        return s;
    }
    let mut end = RENDERING_MAX - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

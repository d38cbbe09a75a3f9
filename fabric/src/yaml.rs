//! The YAML value layer shared by vixp's configuration files (the fabric file and the node
//! file): every scalar kept with its line, typed as the YAML 1.2 core schema reads it, so each
//! file's own rules can judge it and report `FILE:LINE: field: problem`. Must not know any
//! file's fields.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

/// A scalar field: absent or null is `None`; the value keeps its line.
pub type Field = Option<Spanned<Scalar>>;

/// A list of scalars with the line of each.
pub type ScalarList = Option<Spanned<Vec<Spanned<Scalar>>>>;

/// Any YAML scalar, typed as the YAML 1.2 core schema reads it; `convert` decides whether it
/// fits the field.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer, which may be negative or larger than any field allows.
    Integer(i128),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar, quoted or plain.
    Text(String),
}

impl fmt::Display for Scalar {
    /// The value as a user would recognise it in messages: text quoted, numbers plain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("nothing"),
            Self::Bool(value) => write!(f, "{value}"),
            Self::Integer(value) => write!(f, "{value}"),
            Self::Float(value) => write!(f, "{value}"),
            Self::Text(value) => write!(f, "{value:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Accepts any scalar and refuses maps and lists.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value (text, number or true/false)")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(i128::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(i128::from(value)))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Scalar, E> {
        Ok(Scalar::Integer(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Scalar, E> {
        Ok(i128::try_from(value).map_or(Scalar::Float(value as f64), Scalar::Integer))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Writes a configuration problem as operators read it everywhere in vixp:
/// `FILE:LINE: field: message` (no `:LINE` when there is no line, no `field:` when the problem
/// concerns the document as a whole).
pub fn write_problem(
    f: &mut fmt::Formatter<'_>,
    file: &Path,
    line: u64,
    field: &str,
    message: &dyn fmt::Display,
) -> fmt::Result {
    write!(f, "{}", file.display())?;
    if line > 0 {
        write!(f, ":{line}")?;
    }
    if !field.is_empty() {
        write!(f, ": {field}")?;
    }
    write!(f, ": {message}")
}

/// Displays problems one per line.
pub struct Lines<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for Lines<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, item) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

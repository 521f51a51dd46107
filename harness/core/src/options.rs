//! A backend's options, declared once: a serde struct whose doc comments, defaults and
//! `#[schemars(range(...))]` bounds make its JSON schema. From that schema `bench list` prints
//! each option's default and help, and validation checks the bounds, so nothing is written twice.

use schemars::JsonSchema;
use serde_json::Value;

use crate::plan::{check_range, FieldError};

/// One option of a backend, as its schema describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionInfo {
    pub name: String,
    /// The default as it would be written in a scenario (`1000`, `"managed"`), if it has one.
    pub default: Option<String>,
    /// The field's doc comment.
    pub help: String,
    /// The values an enum option takes.
    pub values: Vec<String>,
    /// Inclusive bounds of a number, when declared with `#[schemars(range(...))]`.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The options of `T` (a backend's options struct), by name.
pub fn describe<T: JsonSchema>() -> Vec<OptionInfo> {
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| {
            let p = resolve(root, p);
            let number = |k: &str| p.get(k).and_then(Value::as_f64);
            // A range that only restates the integer type (u16: 0 to 65535) is not declared.
            let type_bounds = match p.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0.0, u8::MAX as f64)),
                Some("uint16") => Some((0.0, u16::MAX as f64)),
                Some("uint32") => Some((0.0, u32::MAX as f64)),
                _ => None,
            };
            let declared = match (number("minimum"), number("maximum")) {
                (Some(lo), Some(hi)) if Some((lo, hi)) != type_bounds => Some((lo, hi)),
                _ => None,
            };
            OptionInfo {
                name: name.clone(),
                default: p.get("default").filter(|d| !d.is_null()).map(toml_like),
                help: p
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                values: enum_values(root, &p),
                min: declared.map(|d| d.0),
                max: declared.map(|d| d.1),
            }
        })
        .collect()
}

/// A property with its `$ref` (an enum's definition) merged in, so it reads as one object.
fn resolve(root: &Value, p: &Value) -> Value {
    let mut out = p.clone();
    let target = p
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/"))
        .and_then(|path| path.split('/').try_fold(root, |v, k| v.get(k)));
    if let (Some(t), Some(obj)) = (target.and_then(Value::as_object), out.as_object_mut()) {
        for (k, v) in t {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out
}

fn enum_values(root: &Value, p: &Value) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(e) = p.get("enum") {
        return strings(e);
    }
    // Enums whose variants carry docs are a oneOf of constants.
    p.get("oneOf")
        .and_then(Value::as_array)
        .map(|alts| {
            alts.iter()
                .map(|a| resolve(root, a))
                .flat_map(|a| match a.get("const") {
                    Some(Value::String(s)) => vec![s.clone()],
                    _ => a.get("enum").map(strings).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON default as a scenario would write it.
fn toml_like(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(m) if m.is_empty() => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// Checks the numbers in `given` (a variant's options as written) against the declared bounds.
/// Values of the wrong type are left to deserialization, which names them already.
pub fn check_bounds(options: &[OptionInfo], given: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(given) = given.as_object() else {
        return errors;
    };
    for o in options {
        let Some(v) = given.get(&o.name).and_then(Value::as_f64) else {
            continue;
        };
        let path = format!("options.{}", o.name);
        if let (Some(min), Some(max)) = (o.min, o.max) {
            // Shown as integers when they are: "valid is 1 to 1024".
            let show = |x: f64| Bound(x);
            check_range(&mut errors, &path, show(v), show(min), show(max));
        }
    }
    errors
}

/// A number that displays without a fraction when it has none.
#[derive(PartialEq, PartialOrd)]
struct Bound(f64);

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 1e18 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Example {
        /// Records per batch at most.
        #[serde(default = "hundred")]
        #[schemars(range(min = 1, max = 1000))]
        batch: u32,
        /// Who runs the broker.
        #[serde(default)]
        mode: Mode,
        /// An address, no default.
        address: Option<String>,
    }

    #[derive(Deserialize, serde::Serialize, JsonSchema, Default)]
    #[serde(rename_all = "kebab-case")]
    #[allow(dead_code)]
    enum Mode {
        #[default]
        Managed,
        External,
    }

    fn hundred() -> u32 {
        100
    }

    #[test]
    fn options_are_described_from_their_declaration() {
        let o = describe::<Example>();
        let names: Vec<_> = o.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["address", "batch", "mode"]);
        assert_eq!(o[0].default, None);
        assert_eq!(o[1].default.as_deref(), Some("100"));
        assert_eq!(o[1].help, "Records per batch at most.");
        assert_eq!((o[1].min, o[1].max), (Some(1.0), Some(1000.0)));
        assert_eq!(o[2].default.as_deref(), Some("\"managed\""));
        assert_eq!(o[2].values, ["managed", "external"]);
    }

    #[test]
    fn declared_bounds_are_checked() {
        let o = describe::<Example>();
        let e = check_bounds(&o, &serde_json::json!({ "batch": 0, "address": "x" }));
        assert_eq!(
            e,
            [FieldError::new(
                "options.batch",
                "batch = 0 is out of range: valid is 1 to 1000"
            )]
        );
        assert!(check_bounds(&o, &serde_json::json!({ "batch": 1000 })).is_empty());
    }
}

//! Scenario files: reading and parsing, and errors placed at file:line:column.
//!
//! A scenario is validated whole before anything is created (`validate.rs`): every error names
//! the file, the position, the field and what would be valid. The file is parsed once, into a
//! tree that keeps each value's place in the text; serde reads the same tree.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::backend::Registry;
use crate::plan::{VariantPlan, Workload};
use crate::validate::{self, RawScenario};

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub text: String,
    pub workload: Workload,
    pub variants: Vec<VariantPlan>,
    /// `[requirements]`: what the report's review judges every variant against.
    pub requirements: Option<crate::requirements::Requirements>,
}

/// A scenario error located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Located>),
}

/// Reads, parses and validates the scenario at `path` against the backends in `registry`.
pub fn load(path: &Path, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, text, registry)
}

/// Parses and validates scenario `text`, naming `path` in errors.
pub fn parse(path: &Path, text: String, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let locator = Locator {
        file: path.to_owned(),
        text: &text,
    };
    let tree = DeTable::parse(&text).map_err(|e| {
        ScenarioError::Invalid(vec![locator.at(
            e.span(),
            "",
            e.message().trim_end().to_owned(),
        )])
    })?;
    let de = toml::de::Deserializer::from(tree.clone());
    let raw: RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let span = inner.span().or_else(|| span_of(&tree, &field));
        let message = inner.message().trim_end().to_owned();
        ScenarioError::Invalid(vec![locator.at(span, &field, message)])
    })?;
    let planned = validate::plan(&raw, registry).map_err(|errors| {
        let located = errors
            .into_iter()
            .map(|e| locator.at(span_of(&tree, &e.path), &e.path, e.message))
            .collect();
        ScenarioError::Invalid(located)
    })?;
    Ok(Scenario {
        name: raw.name,
        description: raw.description,
        path: path.to_owned(),
        workload: planned.workload,
        variants: planned.variants,
        requirements: raw.requirements,
        text,
    })
}

struct Locator<'a> {
    file: PathBuf,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, span: Option<Range<usize>>, field: &str, message: String) -> Located {
        let (line, column) = match span {
            Some(s) => {
                let before = &self.text[..s.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, column)
            }
            None => (1, 1),
        };
        Located {
            file: self.file.clone(),
            line,
            column,
            field: field.to_owned(),
            message,
        }
    }
}

/// The span of the deepest existing item along a dotted path such as `variants[0].options.x`.
fn span_of(tree: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut best = Some(tree.span());
    let mut table = Some(tree.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            let found = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == name));
            let Some((_, v)) = found else { break };
            best = Some(v.span());
            value = Some(v.get_ref());
        }
        if let Some(i) = index {
            let Some(DeValue::Array(items)) = value else {
                break;
            };
            let Some(v) = items.get(i) else { break };
            best = Some(v.span());
            value = Some(v.get_ref());
        }
        table = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    best
}

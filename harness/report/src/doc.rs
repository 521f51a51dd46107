//! The reports' small document model: inline [`Text`] (plain, strong, code) and [`Table`]
//! (columns with their alignment, rows of cells). Tables are built once as data and rendered
//! to Markdown (`summary.rs`), HTML (`html.rs`) or aligned text (`compare`).

/// A run of inline text and how it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Plain(String),
    /// Bold: what a reader must not miss (lost counts).
    Strong(String),
    /// A command or a name to type.
    Code(String),
    /// A link to what explains a figure (a chart).
    Link {
        text: String,
        href: String,
    },
}

/// Inline text: a sequence of spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub Vec<Span>);

impl Text {
    /// Text set plainly.
    pub fn plain(s: impl Into<String>) -> Text {
        Text(vec![Span::Plain(s.into())])
    }

    /// Text set bold.
    pub fn strong(s: impl Into<String>) -> Text {
        Text(vec![Span::Strong(s.into())])
    }

    /// The text without its setting, as a reader would copy it.
    pub fn to_plain(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Span::Plain(t) | Span::Strong(t) | Span::Code(t) => t.as_str(),
                Span::Link { text, .. } => text.as_str(),
            })
            .collect()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::plain(s)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::plain(s)
    }
}

/// How a column's cells line up: text left, figures right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its title and how its cells line up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub title: Text,
    pub align: Align,
}

/// One table of the summary. A row may stop before the last column: the rest is blank (a
/// variant without results says why in its first cells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Text>>,
}

impl Table {
    /// An empty table with these (title, alignment) columns.
    pub fn new(title: &str, columns: &[(&str, Align)]) -> Table {
        Table {
            title: title.to_owned(),
            columns: columns
                .iter()
                .map(|(t, align)| Column {
                    title: Text::plain(*t),
                    align: *align,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The cells of column `title` (for tests and scripts).
    pub fn column(&self, title: &str) -> Vec<String> {
        let Some(k) = self
            .columns
            .iter()
            .position(|c| c.title.to_plain() == title)
        else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| r.get(k).map(Text::to_plain).unwrap_or_default())
            .collect()
    }
}

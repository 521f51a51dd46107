//! Chart keys (legends): a sample of each line style or colour beside its text, in rows that
//! wrap or in a column, always outside the plotting area.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{text_size, DrawResult, FONT, INK};

/// What a key entry shows beside its text.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sample {
    Solid(RGBColor),
    Dashed(RGBColor),
    /// Dashed with sample dots (broker depth).
    DashedDots(RGBColor),
    /// A dotted vertical line (a fault).
    Fault,
    /// A filled square (a variant's colour).
    Swatch(RGBColor),
}

const KEY_ROW: i32 = 20;

/// Where each key entry goes in rows from x0, wrapping at `right`: (x, row).
fn key_layout(entries: &[(Sample, String)], x0: i32, right: i32) -> Vec<(i32, i32)> {
    let (mut x, mut row) = (x0, 0);
    entries
        .iter()
        .map(|(_, text)| {
            let w = 30 + text_size(text, 13.0).0 + 22;
            if x > x0 && x + w > right {
                x = x0;
                row += 1;
            }
            let at = (x, row);
            x += w;
            at
        })
        .collect()
}

/// The height of a key drawn in rows `width` wide.
pub(super) fn key_height(entries: &[(Sample, String)], width: i32) -> i32 {
    key_layout(entries, 0, width)
        .last()
        .map_or(0, |(_, row)| (row + 1) * KEY_ROW)
}

/// Key entries in rows from (x, y), wrapping at `right`.
pub(super) fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Sample, String)],
    (x0, y0): (i32, i32),
    right: i32,
) -> DrawResult<DB> {
    let at = key_layout(entries, x0, right);
    for ((sample, text), (x, row)) in entries.iter().zip(at) {
        draw_entry(area, *sample, text, (x, y0 + row * KEY_ROW))?;
    }
    Ok(())
}

/// Key entries one under the other from (x, y).
pub(super) fn draw_key_column<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Sample, String)],
    (x, y): (i32, i32),
) -> DrawResult<DB> {
    for (k, (sample, text)) in entries.iter().enumerate() {
        draw_entry(area, *sample, text, (x, y + KEY_ROW * k as i32))?;
    }
    Ok(())
}

/// One entry, its row's top left at (x, y): the sample, then its text.
fn draw_entry<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    sample: Sample,
    text: &str,
    (x, y): (i32, i32),
) -> DrawResult<DB> {
    draw_sample(area, sample, (x, y + 8))?;
    area.draw(&Text::new(
        text.to_owned(),
        (x + 30, y + 8),
        (FONT, 13)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center)),
    ))
}

fn draw_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    sample: Sample,
    (x, y): (i32, i32),
) -> DrawResult<DB> {
    let segs: Vec<(i32, i32, ShapeStyle)> = match sample {
        Sample::Solid(c) => vec![(0, 24, c.stroke_width(2))],
        Sample::Dashed(c) | Sample::DashedDots(c) => {
            vec![(0, 7, c.stroke_width(2)), (11, 18, c.stroke_width(2))]
        }
        Sample::Fault => {
            return area.draw(&PathElement::new(
                vec![(x + 12, y - 8), (x + 12, y + 8)],
                INK.stroke_width(1),
            ))
        }
        Sample::Swatch(c) => {
            return area.draw(&Rectangle::new(
                [(x + 4, y - 6), (x + 18, y + 6)],
                c.filled(),
            ))
        }
    };
    for (a, b, style) in segs {
        area.draw(&PathElement::new(vec![(x + a, y), (x + b, y)], style))?;
    }
    if let Sample::DashedDots(c) = sample {
        area.draw(&Circle::new((x + 22, y), 2, c.filled()))?;
    }
    Ok(())
}

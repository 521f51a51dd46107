//! The cost chart: per variant, CPU seconds per million acked messages (broker solid, workers
//! lighter, stacked) and the broker's write amplification (bytes written to storage per
//! message byte), side by side; a variant whose broker is unknown (SysV's kernel, an external
//! broker) shows its workers only and "n/a" for writes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{colour, draw_title, mesh_style, text_size, DrawResult, FONT, INK, WIDTH};

/// What the chart draws of one variant (results.json `cost.per_message`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostBar {
    pub name: String,
    /// The variant's colour ([`super::colour`]).
    pub colour: usize,
    /// CPU seconds per million acked messages: the broker's (None: unknown), the workers'.
    pub broker_cpu: Option<f64>,
    pub clients_cpu: f64,
    pub write_amplification: Option<f64>,
}

const TITLE_H: u32 = 40;
const BAR_ROW: u32 = 28;
const EXTRA: u32 = 90;

pub(super) fn size(bars: &[CostBar]) -> (u32, u32) {
    (WIDTH, TITLE_H + bars.len().max(1) as u32 * BAR_ROW + EXTRA)
}

pub(super) fn cost<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    bars: &[CostBar],
) -> DrawResult<DB> {
    draw_title(
        area,
        "CPU per million messages (broker solid, workers light) and write amplification",
    )?;
    let (_, body) = area.split_vertically(TITLE_H);
    let names_w = (bars.iter())
        .map(|b| text_size(&b.name, 12.0).0)
        .max()
        .unwrap_or(0)
        + 14;
    let (left, right) = body.split_horizontally(WIDTH * 3 / 5);
    let cpu: Vec<(f64, f64)> = (bars.iter())
        .map(|b| (b.broker_cpu.unwrap_or(0.0), b.clients_cpu))
        .collect();
    panel(
        &left,
        bars,
        "CPU seconds per million acked messages",
        &cpu,
        names_w,
        |b| Some(b.broker_cpu.unwrap_or(0.0) + b.clients_cpu),
    )?;
    let writes: Vec<(f64, f64)> = (bars.iter())
        .map(|b| (b.write_amplification.unwrap_or(0.0), 0.0))
        .collect();
    panel(
        &right,
        bars,
        "storage bytes written per message byte (broker)",
        &writes,
        names_w,
        |b| b.write_amplification,
    )
}

/// One panel: a bar per variant of two stacked parts, labelled with `label`'s figure.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &[CostBar],
    title: &str,
    parts: &[(f64, f64)],
    names_w: i32,
    label: fn(&CostBar) -> Option<f64>,
) -> DrawResult<DB> {
    let n = bars.len().max(1) as f64;
    let max = (parts.iter())
        .map(|(a, b)| a + b)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(60)
        .caption(title, (FONT, 14).into_font().color(&INK))
        .x_label_area_size(28)
        .y_label_area_size(names_w)
        .build_cartesian_2d(0f64..max * 1.05, 0f64..n)?;
    mesh_style(&mut chart.configure_mesh(), 11.0)
        .y_labels(0)
        .disable_y_mesh()
        .draw()?;
    for (i, (b, &(solid, light))) in bars.iter().zip(parts).enumerate() {
        let y = n - i as f64 - 0.5;
        let c = colour(b.colour);
        chart.draw_series([
            Rectangle::new([(0.0, y - 0.32), (solid, y + 0.32)], c.filled()),
            Rectangle::new(
                [(solid, y - 0.32), (solid + light, y + 0.32)],
                c.mix(0.4).filled(),
            ),
        ])?;
        let text = label(b).map_or("n/a".to_owned(), crate::tables::n);
        let at = |x: f64, dx: i32, pos: HPos, text: String| {
            EmptyElement::at((x, y))
                + Text::new(
                    text,
                    (dx, 0),
                    (FONT, 12)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(pos, VPos::Center)),
                )
        };
        chart.draw_series([
            at(0.0, -8, HPos::Right, b.name.clone()),
            at(solid + light, 5, HPos::Left, text),
        ])?;
    }
    Ok(())
}

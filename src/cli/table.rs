//! Every table the CLI prints, laid out by comfy-table: columns as wide as their widest cell by
//! display width (a long id, a CJK model suffix, an emoji in a group name stay aligned), two
//! spaces apart, no borders, no trailing spaces. Not wrapped to the terminal: lines stay whole for
//! `grep` and `cut`.

use comfy_table::{Cell, CellAlignment, ColumnConstraint, Table, Width};

/// How a column's cells sit: text to the left, figures to the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with these columns; `header` false for a list whose columns speak for themselves.
pub struct Tabled {
    table: Table,
    aligns: Vec<Align>,
    /// The content widths of blocks already printed (see [`Tabled::flush`]).
    floor: Vec<u16>,
}

impl Tabled {
    pub fn new(columns: &[(&str, Align)], header: bool) -> Self {
        let mut table = Table::new();
        table.load_style(comfy_table::presets::NOTHING);
        if header {
            table.set_header(columns.iter().map(|(name, _)| Cell::new(name)));
        }
        let mut t = Tabled {
            table,
            aligns: columns.iter().map(|(_, a)| *a).collect(),
            floor: Vec::new(),
        };
        t.shape();
        t
    }

    /// Padding (none before the first column) and alignment of every column.
    fn shape(&mut self) {
        self.table.discover_columns();
        for (i, align) in self.aligns.iter().enumerate() {
            if let Some(c) = self.table.column_mut(i) {
                let padding = (u16::from(i > 0), 1);
                c.set_padding(padding);
                if let Some(w) = self.floor.get(i) {
                    let with_padding = w.saturating_add(padding.0 + padding.1);
                    c.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(with_padding)));
                }
                c.set_cell_alignment(match align {
                    Align::Left => CellAlignment::Left,
                    Align::Right => CellAlignment::Right,
                });
            }
        }
    }

    pub fn row<I, T>(&mut self, cells: I)
    where
        I: IntoIterator<Item = T>,
        T: Into<Cell>,
    {
        self.table.add_row(cells);
    }

    pub fn len(&self) -> usize {
        self.table.row_count()
    }

    /// The table's lines, trailing spaces removed.
    pub fn lines(&mut self) -> Vec<String> {
        self.shape();
        self.table
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect()
    }

    /// Prints the table to stdout.
    pub fn print(&mut self) {
        self.print_indented("");
    }

    /// Prints the table to stdout, each line after `indent` (a section of `show`, `plan`).
    pub fn print_indented(&mut self, indent: &str) {
        for line in self.lines() {
            crate::outln!("{indent}{line}");
        }
    }

    /// Prints the rows so far and forgets them, keeping the column widths as lower bounds, so a
    /// long listing is printed in blocks with bounded memory and columns that never narrow (the
    /// header is printed with the first block only).
    pub fn flush(&mut self) {
        self.print();
        let widths = self.table.column_max_content_widths();
        self.floor.resize(widths.len(), 0);
        for (f, w) in self.floor.iter_mut().zip(widths) {
            *f = (*f).max(w);
        }
        let mut next = Table::new();
        next.load_style(comfy_table::presets::NOTHING);
        self.table = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width_and_figures_sit_right() {
        let mut t = Tabled::new(&[("ID", Align::Left), ("COST", Align::Right)], true);
        t.row(["ftjob-a-very-long-identifier-of-a-job", "$1.00"]);
        t.row(["微调-任务", "$12.50"]);
        let lines = t.lines();
        assert_eq!(
            lines,
            [
                "ID                                       COST",
                "ftjob-a-very-long-identifier-of-a-job   $1.00",
                "微调-任务                              $12.50",
            ]
        );
    }

    #[test]
    fn a_flushed_block_keeps_its_widths_for_the_next() {
        let mut t = Tabled::new(&[("ID", Align::Left), ("N", Align::Right)], true);
        t.row(["ftjob-long-one", "1"]);
        let first = t.lines();
        t.flush();
        t.row(["a", "22"]);
        t.row(["ftjob-longer-still", "3"]);
        let second = t.lines();
        assert_eq!(first, ["ID              N", "ftjob-long-one  1"]);
        assert_eq!(second, ["a                   22", "ftjob-longer-still   3"]);
    }
}

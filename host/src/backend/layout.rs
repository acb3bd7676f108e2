//! The binary-tree pane layout shared by the tmux and iTerm2 backends: each
//! new pane splits the largest existing pane of the team, and the split
//! direction alternates with the pane's depth in the tree (side by side at
//! even depths, stacked at odd ones), so panes stay usable as the team grows.

/// A pane's rectangle in terminal cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub left: u32,
    /// Top row.
    pub top: u32,
    /// Width in columns.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
}

impl Rect {
    /// Area in cells.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// How a pane is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Side by side (tmux `-h`, iTerm2 "split vertically").
    SideBySide,
    /// One above the other (tmux `-v`, iTerm2 "split horizontally").
    Stacked,
}

impl Split {
    /// The direction used to split a pane at `depth` (the root is 0).
    pub fn at_depth(depth: u32) -> Self {
        if depth.is_multiple_of(2) { Self::SideBySide } else { Self::Stacked }
    }

    /// The two halves of `r` split this way, with a one-cell separator as
    /// tmux draws it: (the original pane, the new pane).
    pub fn halves(self, r: Rect) -> (Rect, Rect) {
        match self {
            Self::SideBySide => {
                let first = r.width.saturating_sub(1).div_ceil(2);
                let second = r.width.saturating_sub(1) - first;
                (Rect { width: first, ..r }, Rect { left: r.left + first + 1, width: second, ..r })
            }
            Self::Stacked => {
                let first = r.height.saturating_sub(1).div_ceil(2);
                let second = r.height.saturating_sub(1) - first;
                (Rect { height: first, ..r }, Rect { top: r.top + first + 1, height: second, ..r })
            }
        }
    }
}

/// One pane of the team's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Backend pane id (`%3`, a session id, ...).
    pub id: String,
    /// Depth in the split tree.
    pub depth: u32,
}

/// Which pane to split next and how: the largest by area (the earliest of
/// equals, so the choice is deterministic), split by its depth.
/// `rects[i]` is the current rectangle of `nodes[i]`.
pub fn next_split(nodes: &[Node], rects: &[Rect]) -> Option<(usize, Split)> {
    let mut best: Option<usize> = None;
    for (i, r) in rects.iter().enumerate().take(nodes.len()) {
        if best.is_none_or(|b| r.area() > rects[b].area()) {
            best = Some(i);
        }
    }
    best.map(|i| (i, Split::at_depth(nodes[i].depth)))
}

/// A model of the tree for terminals that cannot report geometry (iTerm2
/// over AppleScript): rectangles computed the way tmux would draw them.
#[derive(Debug, Clone)]
pub struct Model {
    nodes: Vec<Node>,
    rects: Vec<Rect>,
}

impl Model {
    /// A tree holding only the root pane `root` of size `width`×`height`.
    pub fn new(root: &str, width: u32, height: u32) -> Self {
        Self {
            nodes: vec![Node { id: root.to_string(), depth: 0 }],
            rects: vec![Rect { left: 0, top: 0, width, height }],
        }
    }

    /// The pane to split next and how.
    pub fn next(&self) -> (String, Split) {
        let (i, split) = next_split(&self.nodes, &self.rects).unwrap_or((0, Split::SideBySide));
        (self.nodes[i].id.clone(), split)
    }

    /// Records that `parent` was split `split`-wise into itself and `child`.
    pub fn split(&mut self, parent: &str, child: &str, split: Split) {
        if let Some(i) = self.nodes.iter().position(|n| n.id == parent) {
            let (a, b) = split.halves(self.rects[i]);
            self.rects[i] = a;
            self.nodes[i].depth += 1;
            let depth = self.nodes[i].depth;
            self.nodes.push(Node { id: child.to_string(), depth });
            self.rects.push(b);
        }
    }

    /// Forgets a closed pane (its space is not reclaimed in the model).
    pub fn remove(&mut self, id: &str) {
        if let Some(i) = self.nodes.iter().position(|n| n.id == id) {
            self.nodes.remove(i);
            self.rects.remove(i);
        }
    }

    /// Current rectangles by pane id.
    pub fn panes(&self) -> Vec<(String, Rect)> {
        self.nodes.iter().map(|n| n.id.clone()).zip(self.rects.iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_pane_is_split_alternating_direction_by_depth() {
        let mut m = Model::new("root", 201, 51);
        let mut ids = vec![];
        for k in 0..8 {
            let (parent, split) = m.next();
            let child = format!("p{k}");
            m.split(&parent, &child, split);
            ids.push((parent, split));
        }
        assert_eq!(ids[0], ("root".into(), Split::SideBySide));
        assert_eq!(ids[1], ("root".into(), Split::Stacked));
        assert_eq!(ids[2], ("p0".into(), Split::Stacked));
        // Four quarters now; they are split side by side in creation order.
        assert_eq!(ids[3], ("root".into(), Split::SideBySide));
        let areas: Vec<u64> = m.panes().iter().map(|(_, r)| r.area()).collect();
        let (min, max) = (areas.iter().min().unwrap(), areas.iter().max().unwrap());
        // A split halves a pane (less one separator line), so no pane is
        // much more than twice the smallest.
        assert!(max * 10 <= min * 21, "panes stay balanced: {areas:?}");
        assert_eq!(m.panes().len(), 9);
    }

    #[test]
    fn halves_leave_one_separator_cell() {
        let r = Rect { left: 0, top: 0, width: 100, height: 40 };
        let (a, b) = Split::SideBySide.halves(r);
        assert_eq!(a.width + b.width + 1, 100);
        assert_eq!(b.left, a.width + 1);
        let (a, b) = Split::Stacked.halves(r);
        assert_eq!(a.height + b.height + 1, 40);
    }
}

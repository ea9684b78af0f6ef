//! A few lines of SVG writing shared by the pictures ([`super::tsg`],
//! [`super::ladder`]): escaping, the document, and the shapes they use. Every
//! shape carries a `class` naming what it shows, which the tests read back.

use std::fmt::Write;

/// Text for an XML attribute or text node.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document being written.
pub struct Svg {
    body: String,
    width: f64,
    height: f64,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { body: String::new(), width, height }
    }

    /// A line.
    pub fn line(&mut self, class: &str, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
        let _ = writeln!(
            self.body,
            r#"<line class="{class}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" style="{style}"/>"#
        );
    }

    /// A polyline through `points`.
    pub fn polyline(&mut self, class: &str, points: &[(f64, f64)], style: &str) {
        let pts: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ =
            writeln!(self.body, r#"<polyline class="{class}" points="{}" style="fill:none;{style}"/>"#, pts.join(" "));
    }

    pub fn rect(&mut self, class: &str, (x, y): (f64, f64), (w, h): (f64, f64), style: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" style="{style}"/>"#
        );
    }

    /// Text; `anchor` is start, middle or end.
    pub fn text(&mut self, class: &str, (x, y): (f64, f64), anchor: &str, size: f64, style: &str, text: &str) {
        let _ = writeln!(
            self.body,
            r#"<text class="{class}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" style="{style}">{}</text>"#,
            escape(text)
        );
    }

    /// Opens a group; close it with [`Svg::end`].
    pub fn group(&mut self, class: &str, title: &str) {
        let _ = writeln!(self.body, r#"<g class="{class}"><title>{}</title>"#, escape(title));
    }

    pub fn end(&mut self) {
        self.body.push_str("</g>\n");
    }

    /// The document, with a white background and an arrowhead marker.
    pub fn finish(self) -> String {
        let (w, h) = (self.width, self.height);
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif">"#,
                "\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>\n",
                r#"<rect class="background" x="0" y="0" width="{w:.0}" height="{h:.0}" style="fill:white"/>"#,
                "\n{body}</svg>\n"
            ),
            w = w,
            h = h,
            body = self.body
        )
    }
}

/// Tick values for an axis from `lo` to `hi`: about `n` round numbers.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 {
        out.push(v);
        v += step;
    }
    out
}

/// Writes `svg` to `path`, or converts it to PNG if the name ends in .png (with
/// rsvg-convert, or ImageMagick's convert).
pub fn write(svg: &str, path: &std::path::Path) -> Result<(), String> {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("svg") => std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display())),
        Some("png") => to_png(svg, path),
        _ => Err(format!("{}: give the picture a .svg or .png extension", path.display())),
    }
}

fn to_png(svg: &str, path: &std::path::Path) -> Result<(), String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let tries: [(&str, Vec<String>); 2] = [
        ("rsvg-convert", vec!["-f".into(), "png".into(), "-o".into(), path.display().to_string()]),
        ("convert", vec!["svg:-".into(), path.display().to_string()]),
    ];
    for (program, args) in tries {
        let Ok(mut child) = Command::new(program).args(&args).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn()
        else {
            continue;
        };
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(svg.as_bytes()).map_err(|e| format!("cannot write to {program}: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("{program} failed: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        return Err(format!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Err("a PNG needs rsvg-convert (apt-get install librsvg2-bin) or ImageMagick's convert; or ask for .svg".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.0, 0.35, 4);
        assert_eq!(t.len(), 4);
        assert!((t[3] - 0.3).abs() < 1e-9);
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}

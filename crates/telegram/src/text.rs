//! Message text as Telegram enforces it: HTML parse mode, user-supplied text escaped, at most
//! 4,096 characters (Telegram counts UTF-16 code units).

/// The longest message text Telegram accepts.
pub const MAX_MESSAGE: usize = 4096;

/// `text` safe inside an HTML-mode message: the three characters the parse mode reads.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// At most `max` UTF-16 units of plain text, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_owned();
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        kept.push(c);
    }
    kept.push('…');
    kept
}

/// A rendered HTML message cut to Telegram's limit. Every line GAD renders closes its own tags,
/// so cutting at a line break never leaves a tag or an entity open.
pub fn fit(html: String) -> String {
    if utf16_len(&html) <= MAX_MESSAGE {
        return html;
    }
    const MORE: &str = "\n…";
    let mut kept = String::new();
    let mut used = 0;
    for line in html.split_inclusive('\n') {
        let len = utf16_len(line);
        if used + len + MORE.len() > MAX_MESSAGE {
            break;
        }
        used += len;
        kept.push_str(line);
    }
    if kept.is_empty() {
        // One enormous line: only GAD's own fixed texts reach here, never cut mid-entity.
        return truncate(&html, MAX_MESSAGE);
    }
    kept.truncate(kept.trim_end().len());
    kept.push_str(MORE);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_markup() {
        assert_eq!(escape("<b>&amp;</b>"), "&lt;b&gt;&amp;amp;&lt;/b&gt;");
    }

    #[test]
    fn long_texts_are_cut_to_the_limit_at_a_line() {
        let line = format!("<b>{}</b>\n", "é".repeat(100));
        let html = line.repeat(100);
        let cut = fit(html);
        assert!(utf16_len(&cut) <= MAX_MESSAGE);
        assert!(cut.ends_with("</b>\n…"));
        assert_eq!(truncate("😀😀😀", 5), "😀😀…");
        assert_eq!(truncate("short", 10), "short");
    }
}

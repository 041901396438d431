//! Lists in messages: the first few items, then how many the message leaves out, so that a
//! count is always whole. A leaf: it imports nothing of the crate.

/// `shown` joined with `sep`, then, when `total` is more than were shown, `and N more` after
/// one more `sep`: `a; b; and 3 more`.
pub(crate) fn and_more<S: AsRef<str>>(shown: impl IntoIterator<Item = S>, total: usize, sep: &str) -> String {
    let mut text = String::new();
    let mut count = 0;
    for item in shown {
        if count > 0 {
            text.push_str(sep);
        }
        text.push_str(item.as_ref());
        count += 1;
    }
    if total > count {
        if count > 0 {
            text.push_str(sep);
        }
        text.push_str(&format!("and {} more", total - count));
    }
    text
}

/// At most `limit` of `items`, then how many more: all of them when only one more would be
/// left out (`and 1 more` says less than the item itself).
pub(crate) fn first<S: AsRef<str>>(items: &[S], limit: usize, sep: &str) -> String {
    let shown = if items.len() <= limit + 1 { items.len() } else { limit };
    and_more(&items[..shown], items.len(), sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_whole_and_one_more_is_shown_not_counted() {
        assert_eq!(and_more(["a", "b"], 5, "; "), "a; b; and 3 more");
        assert_eq!(and_more(["a", "b"], 2, ", "), "a, b");
        assert_eq!(and_more(Vec::<String>::new(), 4, ", "), "and 4 more");
        let items: Vec<String> = (1..=7).map(|i| format!("t{i}")).collect();
        assert_eq!(first(&items, 5, ", "), "t1, t2, t3, t4, t5, and 2 more");
        assert_eq!(first(&items[..6], 5, ", "), "t1, t2, t3, t4, t5, t6");
        assert_eq!(first(&items[..3], 5, ", "), "t1, t2, t3");
    }
}

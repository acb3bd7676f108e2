pub fn render(items: &[&str]) -> String {
    // FIXME: escape commas inside items
    items.join(",")
}

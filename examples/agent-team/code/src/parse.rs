/// Parses a comma-separated list of numbers, e.g. `"1,2,3"`.
pub fn parse_list(text: &str) -> Result<Vec<f64>, String> {
    text.split(',').map(|w| w.parse::<f64>().map_err(|e| format!("{w:?}: {e}"))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spaces_after_commas_are_fine() {
        assert_eq!(super::parse_list("1, 2,3"), Ok(vec![1.0, 2.0, 3.0]));
    }
}

// TODO: reject empty input before parsing
pub fn parse(s: &str) -> Vec<&str> {
    s.split(',').collect()
}

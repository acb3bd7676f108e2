//! The HTTP plumbing both wire formats share: send one JSON body, read the
//! answer with a size cap, and turn a status code into an error the
//! teammate can act on plus whether it is worth retrying. Nothing here
//! formats a `reqwest` error (its text carries the URL) or a header.

use super::retry::{AttemptError, Retry};
use super::{LlmError, Secret};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use std::time::Duration;

/// Longest provider error message passed on, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// A provider's answer: status, what it asked us to wait, body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// How one wire format reads its answers: a 2xx body, and an error body.
pub(crate) struct Format {
    /// The provider's name in errors and logs.
    pub provider: &'static str,
    /// Reads a successful answer.
    pub parse: fn(&[u8]) -> Result<super::models::ProviderAnswer, AttemptError>,
    /// Reads an error answer.
    pub error_body: fn(&[u8]) -> ErrorBody,
}

/// One attempt of a call in `format`: serialises `body`, posts it to `url`
/// and reads a success, or classifies the error with `key` redacted.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: &impl serde::Serialize,
    max_body: usize,
    format: &Format,
    key: Option<&Secret>,
) -> Result<super::models::ProviderAnswer, AttemptError> {
    let bytes = serde_json::to_vec(body).map_err(|e| AttemptError::fatal(LlmError::Provider(e.to_string())))?;
    let reply = post(client, url, headers, bytes, max_body, format.provider).await?;
    if (200..300).contains(&reply.status) {
        (format.parse)(&reply.body)
    } else {
        Err(classify(reply.status, reply.retry_after, (format.error_body)(&reply.body), format.provider, key))
    }
}

/// Sends `body` to `url` and reads the answer, at most `max_body` bytes.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    mut headers: HeaderMap,
    body: Vec<u8>,
    max_body: usize,
    provider: &str,
) -> Result<Reply, AttemptError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut resp = client.post(url).headers(headers).body(body).send().await.map_err(|e| {
        let what = if e.is_connect() { "could not connect to" } else { "lost the connection to" };
        tracing::debug!(provider, error = %e.without_url(), "model call not sent");
        AttemptError { error: LlmError::Provider(format!("{what} {provider}")), retry: Retry::Backoff }
    })?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let too_big = || {
        AttemptError::fatal(LlmError::Provider(format!(
            "{provider} sent a response larger than the cap of {max_body} bytes (limits.max_response_bytes)"
        )))
    };
    if resp.content_length().is_some_and(|n| n > max_body as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(provider, error = %e.without_url(), "model response cut short");
                return Err(AttemptError {
                    error: LlmError::Provider(format!("{provider}'s response was cut short ({status})")),
                    retry: Retry::Backoff,
                });
            }
        }
    }
    Ok(Reply { status, retry_after, body })
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; the HTTP-date
/// form is not read (backoff applies instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| {
        headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = num("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    num("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// What a provider's error body said.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    /// The provider's error type or code (`rate_limit_error`, `insufficient_quota`).
    pub kind: String,
    /// Its message.
    pub message: String,
    /// A spend cap or exhausted quota: waiting does not help.
    pub spend_cap: bool,
}

/// Maps a non-2xx answer to the teammate's error and the retry rule.
pub(crate) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: ErrorBody,
    provider: &str,
    key: Option<&Secret>,
) -> AttemptError {
    let mut message = crate::sanitize::line(&body.message);
    if let Some(key) = key {
        message = key.redact(&message);
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
    }
    let kind = if body.kind.is_empty() { String::new() } else { format!(" {}", crate::sanitize::line(&body.kind)) };
    let said = format!("({status}{kind}): {message}");
    let wait_or_backoff = retry_after.map_or(Retry::Backoff, Retry::After);
    match status {
        429 if body.spend_cap => AttemptError::fatal(LlmError::Provider(format!(
            "{provider} spend limit or quota reached, waiting will not help {said}"
        ))),
        429 => AttemptError { error: LlmError::rate_limited(retry_after), retry: wait_or_backoff },
        529 => AttemptError { error: LlmError::Overloaded, retry: wait_or_backoff },
        _ if body.kind == "overloaded_error" => AttemptError { error: LlmError::Overloaded, retry: wait_or_backoff },
        400 | 413 | 422 => {
            AttemptError::fatal(LlmError::InvalidRequest(format!("{provider} rejected the request {said}")))
        }
        401 | 403 => AttemptError::fatal(LlmError::Provider(format!(
            "{provider} refused the host's key {said}; the host's key configuration needs fixing"
        ))),
        408 | 409 | 500..=599 => {
            AttemptError { error: LlmError::Provider(format!("{provider} failed {said}")), retry: wait_or_backoff }
        }
        _ => AttemptError::fatal(LlmError::Provider(format!("{provider} answered {said}"))),
    }
}

/// A malformed success body: not retried (the same request would likely
/// get the same answer, and it was paid for).
pub(crate) fn malformed(provider: &str, what: impl std::fmt::Display) -> AttemptError {
    AttemptError::fatal(LlmError::Provider(format!("{provider} sent a malformed response: {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eb(kind: &str, spend_cap: bool) -> ErrorBody {
        ErrorBody { kind: kind.into(), message: "msg".into(), spend_cap }
    }

    #[test]
    fn status_mapping() {
        let s = Some(Duration::from_secs(2));
        let c = classify(429, s, eb("rate_limit_error", false), "anthropic", None);
        assert_eq!(
            (c.error, c.retry),
            (LlmError::RateLimited { retry_after_ms: Some(2000) }, Retry::After(Duration::from_secs(2)))
        );
        let c = classify(429, None, eb("rate_limit_error", true), "anthropic", None);
        assert_eq!(c.retry, Retry::Never);
        assert!(c.error.to_string().contains("spend limit or quota reached"), "{}", c.error);
        assert_eq!(classify(529, None, eb("", false), "a", None).retry, Retry::Backoff);
        assert_eq!(classify(529, None, eb("", false), "a", None).error, LlmError::Overloaded);
        for s in [400, 401, 403, 404] {
            assert_eq!(classify(s, None, eb("", false), "a", None).retry, Retry::Never, "{s}");
        }
        assert!(matches!(classify(400, None, eb("", false), "a", None).error, LlmError::InvalidRequest(_)));
        for s in [408, 500, 502, 503] {
            assert_eq!(classify(s, None, eb("", false), "a", None).retry, Retry::Backoff, "{s}");
        }
    }

    #[test]
    fn an_echoed_key_is_redacted_and_control_characters_escaped() {
        let key = Secret::new("sk-live-xyz");
        let body = ErrorBody {
            kind: "authentication_error".into(),
            message: "bad key sk-live-xyz\x1b[2J".into(),
            spend_cap: false,
        };
        let text = classify(401, None, body, "openai", Some(&key)).error.to_string();
        assert!(!text.contains("sk-live-xyz") && !text.contains('\x1b'), "{text}");
        assert!(text.contains("(401 authentication_error): bad key [redacted]"), "{text}");
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None);
    }
}

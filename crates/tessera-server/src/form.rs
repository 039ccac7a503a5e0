//! Strict `application/x-www-form-urlencoded` request reading and parsing for the OAuth
//! endpoints: content type, size limit, decoding, repeated parameters.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};

use crate::error::OAuthError;

/// Parameters of a form body. Empty values are dropped (RFC 6749 §3.1: "Parameters sent
/// without a value MUST be treated as if they were omitted from the request").
#[derive(Debug, Default)]
pub struct Form {
    params: BTreeMap<String, Vec<String>>,
}

impl Form {
    /// Parses a body. Malformed percent-escapes or invalid UTF-8 are `invalid_request`.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in body.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if name.is_empty() || value.is_empty() {
                continue;
            }
            params.entry(name).or_default().push(value);
        }
        Ok(Self { params })
    }

    /// A single-valued parameter. RFC 6749 §3.2: "Request and response parameters MUST NOT
    /// be included more than once" — a repeated one is `invalid_request`.
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        match self.params.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one)),
            Some(_) => Err(OAuthError::invalid_request(format!("parameter {name} is repeated (RFC 6749 section 3.2)"))),
        }
    }

    /// A parameter that may appear several times (RFC 8707 `resource`).
    pub fn multi(&self, name: &str) -> &[String] {
        self.params.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Refuses any repeated parameter other than those in `multi`.
    pub fn reject_repeats(&self, multi: &[&str]) -> Result<(), OAuthError> {
        for (name, values) in &self.params {
            if values.len() > 1 && !multi.contains(&name.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated (RFC 6749 section 3.2)",
                    if name.len() <= 64 { name.as_str() } else { "(long name)" }
                )));
            }
        }
        Ok(())
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let bad = || OAuthError::invalid_request("malformed application/x-www-form-urlencoded body");
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let hi = raw.get(i + 1).copied().and_then(hex).ok_or_else(bad)?;
                let lo = raw.get(i + 2).copied().and_then(hex).ok_or_else(bad)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// RFC 6749 §4.4.2 / appendix B: the body MUST be `application/x-www-form-urlencoded`.
/// Parameters such as `charset=UTF-8` are allowed.
pub fn require_form_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    require_content_type(headers, "application/x-www-form-urlencoded")
}

/// The request's media type must be `media` (parameters such as `charset` aside).
pub fn require_content_type(headers: &HeaderMap, media: &str) -> Result<(), OAuthError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media));
    if ok { Ok(()) } else { Err(OAuthError::invalid_request(format!("content type must be {media}"))) }
}

/// Reads the body up to `limit` bytes; larger bodies get 413 and are not parsed.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, OAuthError> {
    let too_large = || {
        OAuthError::invalid_request(format!("request body exceeds {limit} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large()
        } else {
            OAuthError::invalid_request("the request body could not be read")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_1_empty_values_are_omitted() {
        let f = Form::parse(b"scope=&grant_type=client_credentials&&x").unwrap();
        assert_eq!(f.single("scope").unwrap(), None);
        assert_eq!(f.single("x").unwrap(), None);
        assert_eq!(f.single("grant_type").unwrap(), Some("client_credentials"));
    }

    #[test]
    fn rfc6749_3_2_repeated_parameter_is_invalid_request() {
        let f = Form::parse(b"scope=a&scope=b&resource=x&resource=y").unwrap();
        assert!(f.single("scope").is_err());
        assert!(f.reject_repeats(&["resource"]).is_err());
        assert_eq!(f.multi("resource"), ["x", "y"]);
    }

    #[test]
    fn malformed_escapes_and_utf8_are_refused() {
        assert!(Form::parse(b"a=%zz").is_err());
        assert!(Form::parse(b"a=%4").is_err());
        assert!(Form::parse(b"a=%ff").is_err());
        assert_eq!(Form::parse(b"a=b+c%2B").unwrap().single("a").unwrap(), Some("b c+"));
    }
}

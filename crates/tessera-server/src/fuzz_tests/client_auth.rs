//! Credential extraction (RFC 6749 §2.3): the Basic decoder is reached through `extract`, as
//! a request reaches it.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::collection::vec;
use proptest::prelude::*;
use tessera_types::ErrorCode;

use crate::client_auth::{AuthorizationHeader, ClientAuthMethod, presented};
use crate::form::Form;

/// The `Authorization` header parsed, and the method dispatcher, as the extractor runs them.
fn extract(h: &HeaderMap, form: &Form) -> Result<crate::client_auth::Credentials, crate::OAuthError> {
    presented(&AuthorizationHeader::parse(h), form, None, 8 * 1024)
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn headers(value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, value);
    Some(h)
}

fn basic(scheme: &str, b64: &str) -> HeaderMap {
    headers(format!("{scheme} {b64}").as_bytes()).expect("base64 is a valid header value")
}

/// RFC 6749 appendix A: client-id and client-secret are VSCHAR (%x20-7E); Tessera also
/// bounds their length.
fn vschar(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[ -~]{{1,{max}}}")).unwrap(),
        // What needs escaping most often.
        proptest::string::string_regex("[:%+ &=a]{1,16}").unwrap(),
    ]
}

fn scheme() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec!["Basic", "basic", "BASIC", "bAsIc"])
}

/// Arbitrary header values: printable junk, `Basic` with random or random-base64 payloads,
/// and raw bytes (including obs-text, which `to_str` refuses).
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..80),
        "[ -~]{0,80}".prop_map(String::into_bytes),
        (scheme(), "[ -~]{0,60}").prop_map(|(s, r)| format!("{s} {r}").into_bytes()),
        (scheme(), vec(any::<u8>(), 0..60)).prop_map(|(s, raw)| format!("{s} {}", STANDARD.encode(raw)).into_bytes()),
        (scheme(), "[ -~]{0,20}", "[ -~]{0,20}").prop_map(|(s, id, secret)| format!(
            "{s} {}",
            STANDARD.encode(format!("{id}:{secret}"))
        )
        .into_bytes()),
    ]
}

/// Forms that may carry client_id / client_secret, repeated, empty or not.
fn form_body() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        "[ -~]{0,20}".prop_map(|v| format!("client_id={}", form_encode(&v))),
        "[ -~]{0,20}".prop_map(|v| format!("client_secret={}", form_encode(&v))),
        Just("grant_type=client_credentials".to_owned()),
        "[a-z%=+&]{0,12}",
    ];
    vec(param, 0..5).prop_map(|p| p.join("&"))
}

proptest! {
    #![proptest_config(super::config(1024))]

    /// No header value and no form makes extraction panic; whatever it refuses is an RFC 6749
    /// §5.2 `invalid_request` or `invalid_client`, and what it accepts came as one method.
    #[test]
    fn arbitrary_headers_and_forms_never_panic(
        value in proptest::option::of(authorization()),
        body in form_body(),
    ) {
        let Ok(form) = Form::parse(body.as_bytes()) else { return Ok(()) };
        let h = match &value {
            Some(v) => match headers(v) { Some(h) => h, None => return Ok(()) },
            None => HeaderMap::new(),
        };
        match extract(&h, &form) {
            Ok(creds) => {
                prop_assert!(!creds.client_id.as_str().is_empty() && creds.secret().is_none_or(|s| !s.expose().is_empty()));
                match creds.method {
                    ClientAuthMethod::ClientSecretBasic => {
                        prop_assert!(value.is_some());
                        prop_assert_eq!(form.single("client_secret").unwrap(), None, "Basic and client_secret");
                    }
                    ClientAuthMethod::ClientSecretPost => {
                        prop_assert!(value.is_none(), "post credentials beside an Authorization header");
                        prop_assert_eq!(form.single("client_id").unwrap(), Some(creds.client_id.as_str()));
                        prop_assert_eq!(form.single("client_secret").unwrap(), Some(creds.secret().unwrap().expose()));
                    }
                    ClientAuthMethod::PrivateKeyJwt => {
                        prop_assert!(value.is_none(), "an assertion beside an Authorization header");
                        prop_assert!(form.single("client_secret").unwrap().is_none(), "an assertion beside a secret");
                    }
                    // No certificate is presented here: a certificate method would be a bug.
                    ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {
                        prop_assert!(false, "a certificate method without a certificate");
                    }
                }
            }
            Err(e) => prop_assert!(matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::InvalidClient), "{:?}", e.code),
        }
    }

    /// §2.3.1: id and secret form-encoded, joined by `:`, base64: any valid pair round-trips,
    /// whatever the scheme's case and the spaces before the credentials.
    #[test]
    fn rfc6749_2_3_1_basic_round_trips(
        id in vschar(255),
        secret in vschar(1024),
        scheme in scheme(),
        spaces in 0usize..3,
        same_id_in_body in any::<bool>(),
    ) {
        let b64 = STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
        let h = basic(scheme, &format!("{}{b64}", " ".repeat(spaces)));
        let body = if same_id_in_body { format!("client_id={}", form_encode(&id)) } else { String::new() };
        let creds = extract(&h, &Form::parse(body.as_bytes()).unwrap()).unwrap();
        prop_assert_eq!(creds.method, ClientAuthMethod::ClientSecretBasic);
        prop_assert_eq!(creds.client_id.as_str(), id.as_str());
        prop_assert_eq!(creds.secret().unwrap().expose(), secret.as_str());
    }

    /// §2.3: "The client MUST NOT use more than one authentication method in each request":
    /// Basic (well-formed or not) beside a client_secret is never accepted.
    #[test]
    fn rfc6749_2_3_basic_and_client_secret_is_never_accepted(
        id in vschar(64),
        secret in vschar(64),
        body_secret in "[ -~]{1,20}",
        scheme in scheme(),
        payload in prop_oneof![Just(None), "[ -~]{0,40}".prop_map(Some)],
    ) {
        let b64 = payload.unwrap_or_else(|| STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret))));
        let Some(h) = headers(format!("{scheme} {b64}").as_bytes()) else { return Ok(()) };
        let body = format!("client_id={}&client_secret={}", form_encode(&id), form_encode(&body_secret));
        let e = extract(&h, &Form::parse(body.as_bytes()).unwrap()).unwrap_err();
        prop_assert!(matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::InvalidClient));
    }

    /// A Basic client_id that differs from the body's client_id is refused.
    #[test]
    fn basic_and_a_different_body_client_id_is_refused(id in vschar(64), other in vschar(64), secret in vschar(64)) {
        prop_assume!(id != other);
        let h = basic("Basic", &STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret))));
        let body = format!("client_id={}", form_encode(&other));
        prop_assert_eq!(extract(&h, &Form::parse(body.as_bytes()).unwrap()).unwrap_err().code, ErrorCode::InvalidRequest);
    }
}

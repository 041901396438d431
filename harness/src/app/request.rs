//! One API request of the app phase, and its assertions: status, JSON values by pointer
//! (equals, exists, matches), body text and latency. A request's result is a check like any
//! other (kind `api`), so it appears in all three reports.

use crate::outcome::CheckKind;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::field::FieldError;
use crate::outcome::CheckResult;
use crate::secret::{Redactor, Secret};
use crate::template::{TemplateError, check_template, render};

crate::outcome::findings! {
    /// What `api` finds.
    pub(crate) enum Found for Api {
        Answered = Pass "api.answered"
            "The application answered the request with the status and body the scenario expects."
            "Nothing.",
        WrongAnswer = Fail "api.wrong-answer"
            "The application answered, but not with the status, body or latency the scenario expects."
            "Read the application's answer in the message and its log.",
        NoAnswer = Error "api.no-answer"
            "The application did not answer the request (refused, timed out, or the connection broke)."
            "Read the application's log: it may not have started on the restored database.",
        RequestNotBuilt = Error "api.request-not-built"
            "The request could not be built from the scenario (its URL, headers or body)."
            "Fix the request in `[[app.requests]]`.",
    }
}

/// The kind of an API request's result.
const KIND: CheckKind = CheckKind::Api;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppRequest")]
pub(crate) struct Config {
    /// The request's name in the reports, unique among the app's requests.
    pub name: String,
    /// The HTTP method (default `GET`).
    pub method: Option<String>,
    /// The path on the app, starting with `/`; templated (`/api/v1/orders/{{order_id}}`).
    pub path: String,
    /// Header name to value, templated (`{ Authorization = "Bearer {{token}}" }`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, written as TOML, its strings templated; not with `body`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<toml::Value>,
    /// A body as text, templated; not with `json`.
    pub body: Option<String>,
    /// The status the answer must have (default: any 2xx).
    pub expect_status: Option<u16>,
    /// Values the answer's JSON must hold, each at a JSON pointer.
    #[serde(default)]
    pub expect_json: Vec<JsonExpectation>,
    /// Text the answer's body must contain.
    pub expect_body_contains: Option<String>,
    /// Longest the answer may take, from sending the request to its whole body (`2s`).
    pub max_latency: Option<String>,
    /// Values to keep from the response's JSON for later requests: name to JSON pointer.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppJsonExpectation")]
pub(crate) struct JsonExpectation {
    /// A JSON pointer into the answer (`/token`, `/items/0/id`; `""` for the whole document).
    pub pointer: String,
    /// The value it must equal, written as TOML.
    #[schemars(with = "Option<serde_json::Value>")]
    pub equals: Option<toml::Value>,
    /// `false`: the value must be absent. Otherwise it must be present (default).
    pub exists: Option<bool>,
    /// A regular expression the value (as text) must match.
    pub matches: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub method: reqwest::Method,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub json: Option<serde_json::Value>,
    pub body: Option<String>,
    pub expect_status: Option<u16>,
    pub expect_json: Vec<(JsonExpectation, Option<regex::Regex>)>,
    pub expect_body_contains: Option<String>,
    pub max_latency: Option<Duration>,
    pub capture: BTreeMap<String, String>,
}

fn toml_to_json(value: toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Into::into).unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => a.into_iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect(),
    }
}

fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

impl Spec {
    pub(crate) fn resolve(config: Config, known: &BTreeSet<String>) -> Result<Self, FieldError> {
        let at = format!("app request `{}`", config.name);
        let method = config.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| FieldError::unplaced(format!("{at}: `{method}` is not an HTTP method")))?;
        if !config.path.starts_with('/') {
            return Err(FieldError::unplaced(format!("{at}: `path` must start with `/`")));
        }
        if config.json.is_some() && config.body.is_some() {
            return Err(FieldError::unplaced(format!("{at}: give `json` or `body`, not both")));
        }
        check_template(&config.path, known, &at)?;
        for value in config.headers.values() {
            check_template(value, known, &at)?;
        }
        let json = config.json.map(toml_to_json);
        if let Some(json) = &json {
            let mut strings = Vec::new();
            json_strings(json, &mut strings);
            for s in strings {
                check_template(&s, known, &at)?;
            }
        }
        if let Some(body) = &config.body {
            check_template(body, known, &at)?;
        }
        let mut expect_json = Vec::new();
        for e in config.expect_json {
            if !e.pointer.is_empty() && !e.pointer.starts_with('/') {
                return Err(FieldError::unplaced(format!("{at}: JSON pointer `{}` must start with `/`", e.pointer)));
            }
            let regex =
                match &e.matches {
                    Some(r) => Some(regex::Regex::new(r).map_err(|err| {
                        FieldError::unplaced(format!("{at}: `{r}` is not a regular expression: {err}"))
                    })?),
                    None => None,
                };
            expect_json.push((e, regex));
        }
        let max_latency = match &config.max_latency {
            Some(t) => Some(
                humantime::parse_duration(t)
                    .map_err(|e| FieldError::unplaced(format!("{at}: `max_latency` `{t}`: {e}")))?,
            ),
            None => None,
        };
        Ok(Spec {
            name: config.name,
            method,
            path: config.path,
            headers: config.headers,
            json,
            body: config.body,
            expect_status: config.expect_status,
            expect_json,
            expect_body_contains: config.expect_body_contains,
            max_latency,
            capture: config.capture,
        })
    }

    /// Every text of the request that may hold templates.
    pub(crate) fn template_texts(&self) -> Vec<String> {
        let mut out = vec![self.path.clone()];
        out.extend(self.headers.values().cloned());
        if let Some(json) = &self.json {
            json_strings(json, &mut out);
        }
        out.extend(self.body.clone());
        out
    }

    fn expected(&self) -> String {
        let mut parts = vec![match self.expect_status {
            Some(s) => format!("status {s}"),
            None => "a 2xx status".to_owned(),
        }];
        for (e, _) in &self.expect_json {
            parts.push(match (&e.equals, e.exists, &e.matches) {
                (Some(v), _, _) => format!("{} = {}", e.pointer, toml_to_json(v.clone())),
                (_, Some(false), _) => format!("no {}", e.pointer),
                (_, _, Some(r)) => format!("{} matches /{r}/", e.pointer),
                _ => format!("{} present", e.pointer),
            });
        }
        if let Some(text) = &self.expect_body_contains {
            parts.push(format!("body contains {text:?}"));
        }
        if let Some(max) = self.max_latency {
            parts.push(format!("within {}", humantime::format_duration(max)));
        }
        parts.join(", ")
    }

    /// The request, its path, headers and body rendered with the values captured so far; the
    /// rendered path, for the evidence.
    fn build(
        &self,
        client: &reqwest::Client,
        base: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(reqwest::RequestBuilder, String), TemplateError> {
        let path = render(&self.path, values)?;
        let mut request = client.request(self.method.clone(), format!("{base}{path}"));
        for (k, v) in &self.headers {
            request = request.header(k, render(v, values)?);
        }
        if let Some(j) = &self.json {
            request = request.json(&render_json(j, values)?);
        }
        if let Some(body) = &self.body {
            request = request.body(render(body, values)?);
        }
        Ok((request, path))
    }

    /// What the JSON answer (`parsed`) gets wrong against `expect_json`.
    fn json_problems(&self, parsed: Option<&serde_json::Value>) -> Vec<String> {
        let mut problems = Vec::new();
        for (e, regex) in &self.expect_json {
            let found = parsed.and_then(|p| p.pointer(&e.pointer));
            if let Some(want) = &e.equals {
                let want = toml_to_json(want.clone());
                if found != Some(&want) {
                    problems.push(format!(
                        "{} is {}, expected {want}",
                        e.pointer,
                        found.map(|v| v.to_string()).unwrap_or_else(|| "missing".into())
                    ));
                }
            }
            match (e.exists, found) {
                (Some(true), None) | (None, None) if e.equals.is_none() => {
                    problems.push(format!("{} is missing", e.pointer))
                }
                (Some(false), Some(_)) => problems.push(format!("{} is present", e.pointer)),
                _ => {}
            }
            // A value that is missing is said to be missing once, above, not also not to match.
            if let (Some(regex), Some(found)) = (regex, found) {
                let text = found.as_str().map(str::to_owned).unwrap_or_else(|| found.to_string());
                if !regex.is_match(&text) {
                    problems.push(format!("{} is {text:?}, which does not match /{}/", e.pointer, regex.as_str()));
                }
            }
        }
        problems
    }

    /// Sends the request to the app at `base`, checks the answer, and stores captures into
    /// `values` (registering them as secrets).
    pub(crate) async fn run(
        &self,
        client: &reqwest::Client,
        base: &str,
        values: &mut BTreeMap<String, String>,
        redactor: &Redactor,
    ) -> CheckResult {
        let started = Instant::now();
        let result = CheckResult::build(KIND, self.name.clone(), started)
            .expected(self.expected())
            .evidence(format!("{} {}", self.method, self.path));
        let (request, path) = match self.build(client, base, values) {
            Ok(built) => built,
            Err(e) => return result.found(Found::RequestNotBuilt, format!("the request cannot be built: {e}")),
        };
        let sent = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return result.found(
                    Found::NoAnswer,
                    format!("the app did not answer: {}", redactor.redact(&crate::error::error_chain(&e))),
                );
            }
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let latency = sent.elapsed();
        let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let mut problems = Vec::new();
        match self.expect_status {
            Some(want) if want != status => problems.push(format!("status {status}, expected {want}")),
            None if !(200..300).contains(&status) => problems.push(format!("status {status}")),
            _ => {}
        }
        problems.extend(self.json_problems(parsed.as_ref()));
        if let Some(want) = &self.expect_body_contains
            && !text.contains(want.as_str())
        {
            problems.push(format!("the body does not contain {want:?}"));
        }
        if let Some(max) = self.max_latency
            && latency > max
        {
            problems.push(format!("answered in {} ms, over {} ms", latency.as_millis(), max.as_millis()));
        }
        for (name, pointer) in &self.capture {
            match parsed.as_ref().and_then(|p| p.pointer(pointer)) {
                Some(value) => {
                    let value = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
                    redactor.register(&Secret::new(value.clone()));
                    values.insert(name.clone(), value);
                }
                None => problems.push(format!("nothing to capture as `{name}` at {pointer}")),
            }
        }
        let snippet: String = text.chars().take(300).collect();
        let actual = format!("status {status} in {} ms: {}", latency.as_millis(), redactor.redact(&snippet));
        let evidence = format!("{} {}", self.method, redactor.redact(&path));
        let result = result.actual(actual).evidence(evidence);
        if problems.is_empty() {
            result.found(Found::Answered, format!("`{}` answered {status} in {} ms", self.name, latency.as_millis()))
        } else {
            result.found(Found::WrongAnswer, format!("`{}`: {}", self.name, redactor.redact(&problems.join("; "))))
        }
    }
}

/// `value` with the templates of its strings rendered.
fn render_json(
    value: &serde_json::Value,
    values: &BTreeMap<String, String>,
) -> Result<serde_json::Value, TemplateError> {
    Ok(match value {
        serde_json::Value::String(s) => serde_json::Value::String(render(s, values)?),
        serde_json::Value::Array(a) => a.iter().map(|v| render_json(v, values)).collect::<Result<_, _>>()?,
        serde_json::Value::Object(o) => {
            o.iter().map(|(k, v)| Ok((k.clone(), render_json(v, values)?))).collect::<Result<_, TemplateError>>()?
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["app_url", "database", "token"].map(String::from).into()
    }

    fn spec(text: &str) -> Result<Spec, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        Spec::resolve(config, &known()).map_err(|e| e.message)
    }

    const LOGIN: &str = r#"
name = "login"
method = "post"
path = "/api/v1/{{database}}/login"
headers = { Authorization = "Bearer {{token}}" }
json = { email = "admin@example.com", tries = 3, ratio = 0.5, tags = ["{{token}}", true], when = 2026-03-01T02:00:00Z }
expect_status = 201
expect_json = [
  { pointer = "/token", matches = "^[0-9a-f]{8}$" },
  { pointer = "/user/id", equals = 7 },
  { pointer = "/error", exists = false },
  { pointer = "/session" },
]
expect_body_contains = "token"
max_latency = "2s"
capture = { session = "/session" }
"#;

    #[test]
    fn a_request_resolves_with_its_method_json_and_assertions() {
        let login = spec(LOGIN).unwrap();
        assert_eq!(login.method, reqwest::Method::POST);
        assert_eq!(login.max_latency, Some(Duration::from_secs(2)));
        assert_eq!(
            login.json,
            Some(serde_json::json!({
                "email": "admin@example.com", "tries": 3, "ratio": 0.5,
                "tags": ["{{token}}", true], "when": "2026-03-01T02:00:00Z"
            }))
        );
        assert_eq!(
            login.template_texts(),
            [
                "/api/v1/{{database}}/login",
                "Bearer {{token}}",
                "admin@example.com",
                "{{token}}",
                "2026-03-01T02:00:00Z"
            ]
        );
        let get = spec("name = \"health\"\npath = \"/health\"").unwrap();
        assert_eq!(get.method, reqwest::Method::GET);
    }

    #[test]
    fn a_request_that_cannot_be_sent_as_written_is_refused() {
        let refused = |text: &str| spec(&format!("name = \"r\"\n{text}")).unwrap_err();
        assert_eq!(refused("path = \"health\""), "app request `r`: `path` must start with `/`");
        assert_eq!(refused("method = \"GE T\"\npath = \"/\""), "app request `r`: `GE T` is not an HTTP method");
        assert_eq!(
            refused("path = \"/\"\njson = {}\nbody = \"x\""),
            "app request `r`: give `json` or `body`, not both"
        );
        assert_eq!(
            refused("path = \"/\"\nexpect_json = [{ pointer = \"token\" }]"),
            "app request `r`: JSON pointer `token` must start with `/`"
        );
        assert!(
            refused("path = \"/\"\nexpect_json = [{ pointer = \"/t\", matches = \"(\" }]")
                .starts_with("app request `r`: `(` is not a regular expression: "),
        );
        assert!(refused("path = \"/\"\nmax_latency = \"soon\"").starts_with("app request `r`: `max_latency` `soon`: "));
        assert!(
            refused("path = \"/\"\njson = { user = \"{{tokn}}\" }")
                .starts_with("app request `r` uses `{{tokn}}`, which is not known there"),
            "a template in the JSON is checked too"
        );
        assert!(refused("path = \"/\"\nexpect = 200").contains("unknown field `expect`"));
    }

    #[test]
    fn what_is_expected_is_said_in_one_line() {
        assert_eq!(
            spec(LOGIN).unwrap().expected(),
            "status 201, /token matches /^[0-9a-f]{8}$/, /user/id = 7, no /error, /session present, \
             body contains \"token\", within 2s"
        );
        assert_eq!(spec("name = \"h\"\npath = \"/h\"").unwrap().expected(), "a 2xx status");
    }

    #[test]
    fn the_json_answer_is_judged_by_each_pointer() {
        let login = spec(LOGIN).unwrap();
        let good = serde_json::json!({"token": "0badc0de", "user": {"id": 7}, "session": "s1"});
        assert!(login.json_problems(Some(&good)).is_empty());
        let bad = serde_json::json!({"token": 1234, "user": {"id": "7"}, "error": "locked"});
        assert_eq!(
            login.json_problems(Some(&bad)),
            [
                "/token is \"1234\", which does not match /^[0-9a-f]{8}$/",
                "/user/id is \"7\", expected 7",
                "/error is present",
                "/session is missing",
            ]
        );
        assert_eq!(
            login.json_problems(None),
            ["/token is missing", "/user/id is missing, expected 7", "/session is missing",],
            "an answer that is not JSON has nothing at any pointer"
        );
    }

    #[test]
    fn the_request_is_built_with_the_values_captured_so_far() {
        let login = spec(LOGIN).unwrap();
        let values: BTreeMap<String, String> =
            [("database", "orders"), ("token", "t0k")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        crate::tls::install();
        let client = reqwest::Client::new();
        let (request, path) = login.build(&client, "http://127.0.0.1:8080", &values).unwrap();
        assert_eq!(path, "/api/v1/orders/login");
        let request = request.build().unwrap();
        assert_eq!(request.method(), reqwest::Method::POST);
        assert_eq!(request.url().as_str(), "http://127.0.0.1:8080/api/v1/orders/login");
        assert_eq!(request.headers()["authorization"], "Bearer t0k");
        let body: serde_json::Value = serde_json::from_slice(request.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(body["tags"], serde_json::json!(["t0k", true]));
        assert_eq!(body["tries"], 3);

        let early = login.build(&client, "http://127.0.0.1:8080", &BTreeMap::new()).err().unwrap();
        assert_eq!(early.to_string(), "`{{database}}` has no value yet");
    }
}

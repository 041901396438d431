//! The login module's tests: the application's roles, `[login]` as written, what a session's
//! answer and failure say, and the evidence that opens each probe.

use super::*;

fn identity() -> Identity {
    Identity {
        user: "app".into(),
        session_user: "app".into(),
        current_user: "app".into(),
        address: None,
        application_name: "app".into(),
        transport: "over the target's Unix socket".into(),
        login: "with a password made for the drill",
        set_role: None,
        settings: Vec::new(),
    }
}

#[test]
fn login_as_written_resolves_and_unknown_keys_are_refused() {
    let socket: Config = toml::from_str("transport = \"socket\"").unwrap();
    assert_eq!(Spec::resolve(socket).transport, Transport::Socket);
    assert!(toml::from_str::<Config>("transport = \"udp\"").is_err());
    let config: Config = toml::from_str(
        "role = \"app\"\napplication_name = \"api\"\nvia = \"authenticator\"\npasswords = { app = \"APP_DB_PASSWORD\" }",
    )
    .unwrap();
    let spec = Spec::resolve(config);
    assert_eq!(spec.transport, Transport::Tcp, "TCP unless the scenario says the socket");
    assert_eq!(spec.role.as_deref(), Some("app"));
    assert_eq!(spec.application_name.as_deref(), Some("api"));
    assert_eq!(spec.via.as_deref(), Some("authenticator"));
    assert_eq!(spec.passwords.get("app").map(String::as_str), Some("APP_DB_PASSWORD"));
    assert!(spec.roles.is_empty(), "the scenario's login roles are added once `[restore]` is resolved");

    let error = toml::from_str::<Config>("role = \"app\"\npassword = \"x\"").unwrap_err().to_string();
    assert!(error.contains("unknown field `password`"), "{error}");
}

#[test]
fn the_application_roles_are_each_listed_once_in_order() {
    let spec = Spec { role: Some("app".into()), roles: vec!["reader".into(), "app".into()], ..Spec::default() };
    assert_eq!(spec.application_roles(["auditor".to_owned(), "reader".to_owned()]), ["app", "reader", "auditor"]);
    let spec = Spec::default();
    assert_eq!(spec.application_roles(["auditor".to_owned()]), ["auditor"]);
    assert!(spec.application_roles(Vec::new()).is_empty());
}

#[test]
fn an_answer_gives_its_first_value_as_text_or_as_an_integer() {
    let answer = Answer { rows: vec![vec![Some("42".into()), Some("x".into())], vec![Some("7".into())]], affected: 2 };
    assert_eq!(answer.first(), Some("42"));
    assert_eq!(answer.int(), Some(42));
    let null = Answer { rows: vec![vec![None]], affected: 1 };
    assert_eq!((null.first(), null.int()), (None, None));
    let text = Answer { rows: vec![vec![Some("forty-two".into())]], affected: 1 };
    assert_eq!(text.int(), None);
    assert_eq!(Answer::default().first(), None, "no row");
}

#[test]
fn a_failure_is_described_with_its_sqlstate_and_detail_or_as_a_lost_session() {
    let denied = Failure::Database {
        code: "42501".into(),
        message: "permission denied for table orders".into(),
        detail: Some("policy orders_tenant".into()),
        context: Some("PL/pgSQL function f() line 3 at RAISE".into()),
    };
    assert_eq!(denied.describe(), "permission denied for table orders (42501; policy orders_tenant)");
    assert_eq!(denied.to_string(), denied.describe());
    assert_eq!(denied.sqlstate(), Some(("42501", Some("PL/pgSQL function f() line 3 at RAISE"))));
    assert_eq!(denied.message(), "permission denied for table orders");

    let bare = Failure::Database { code: "23505".into(), message: "duplicate key".into(), detail: None, context: None };
    assert_eq!(bare.describe(), "duplicate key (23505)");
    assert_eq!(bare.sqlstate(), Some(("23505", None)));

    let lost = Failure::Lost("connection reset by peer".into());
    assert_eq!(lost.describe(), "the session was lost: connection reset by peer");
    assert_eq!(lost.sqlstate(), None);
    assert_eq!(lost.message(), "connection reset by peer");
}

#[test]
fn the_evidence_names_who_logged_in_from_where_and_the_settings_it_was_given() {
    assert_eq!(
        identity().evidence(),
        "-- a real login of `app` (with a password made for the drill) over the target's Unix socket: \
         session_user `app`; no client address (a Unix socket); \
         application_name 'app'\n\
         -- settings in force from the login (beyond the server's configuration): none\n"
    );
    let tcp = Identity {
        current_user: "tenant_admin".into(),
        address: Some("10.0.0.7".into()),
        application_name: "o'brien's api".into(),
        transport: "over TCP to db:5432".into(),
        settings: vec!["search_path = 'app' (user)".into(), "work_mem = '64MB' (database)".into()],
        ..identity()
    };
    assert_eq!(
        tcp.evidence(),
        "-- a real login of `app` (with a password made for the drill) over TCP to db:5432: session_user `app`, \
         which became `tenant_admin` at login (the role's `role` setting); client address 10.0.0.7; \
         application_name 'o''brien''s api'\n\
         -- settings in force from the login (beyond the server's configuration): \
         search_path = 'app' (user), work_mem = '64MB' (database)\n"
    );
}

#[test]
fn the_evidence_of_a_login_through_via_names_the_switch() {
    let switched = Identity {
        user: "authenticator".into(),
        session_user: "authenticator".into(),
        current_user: "web_anon".into(),
        set_role: Some("web_anon".into()),
        ..identity()
    };
    let evidence = switched.evidence();
    assert!(
        evidence.contains(
            "session_user `authenticator`, then `SET ROLE web_anon` as the application does (`[login] via`): \
             current_user `web_anon`;"
        ),
        "{evidence}"
    );
    assert!(!evidence.contains("became"), "a switch is not the role's own setting: {evidence}");
}

#[test]
fn a_tenant_setting_is_set_for_the_transaction_with_its_values_quoted() {
    assert_eq!(set_local_sql("app.tenant", "o'brien"), "SELECT pg_catalog.set_config('app.tenant', 'o''brien', true)");
}

#[test]
fn a_login_error_names_the_role_and_what_stopped_it() {
    let unset = LoginError::PasswordUnset { role: "app".into(), var: "APP_DB_PASSWORD".into() };
    assert_eq!(unset.to_string(), "the password of `app` is read from `APP_DB_PASSWORD`, which is not set");
    let refused = LoginError::Refused {
        role: "app".into(),
        database: "orders".into(),
        message: "the role is NOLOGIN in the restored database".into(),
    };
    assert_eq!(refused.to_string(), "`app` cannot log in to `orders`: the role is NOLOGIN in the restored database");
}

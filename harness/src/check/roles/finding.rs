//! What `roles` finds: a code per result it can give.

crate::outcome::findings! {
    /// What `roles` finds.
    pub(crate) enum Found for Roles {
        Missing = Fail "roles.missing"
            "The role the scenario names does not exist on the restored server."
            "Restore the roles first (a `pg_dumpall --globals-only` file, or `[restore] roles`), or check the name.",
        FloorHeld = Pass "roles.floor-held"
            "The role holds every privilege the application needs (its floor)."
            "Nothing.",
        LacksPrivilege = Fail "roles.lacks-privilege"
            "The role lacks a privilege the application needs: the application fails on the restored database."
            "Grant it in the source, or find why the backup lost the grant (`pg_dump --no-privileges`, `--no-owner`).",
        LoginAsExpected = Pass "roles.login-as-expected"
            "The role can or cannot log in, as the scenario says."
            "Nothing.",
        CanLogIn = Fail "roles.can-log-in"
            "The role can log in (LOGIN) where the scenario expects NOLOGIN: anyone with its password connects as it."
            "`ALTER ROLE ... NOLOGIN` in the source.",
        CannotLogIn = Fail "roles.cannot-log-in"
            "The role cannot log in (NOLOGIN) where the scenario expects LOGIN: the application cannot connect."
            "`ALTER ROLE ... LOGIN` in the source, or restore the roles with their attributes.",
        OwnsNothing = Pass "roles.owns-nothing"
            "The role owns no table, view, sequence or schema, itself or through a role it is a member of."
            "Nothing.",
        OwnsObjects = Fail "roles.owns-objects"
            "The role owns objects, itself or through a role: it can alter or drop them, and bypass their row security."
            "Give the objects to a role the application does not log in as.",
        NoDdl = Pass "roles.no-ddl"
            "The role can create no object (no CREATE on a schema or the database)."
            "Nothing.",
        CanCreate = Fail "roles.can-create"
            "The role can create objects in a schema or the database: it can shadow the application's functions and tables."
            "`REVOKE CREATE` on the schemas listed (PostgreSQL before 15 grants it on `public` to everyone).",
        NoForbiddenAccess = Pass "roles.no-forbidden-access"
            "The role has no access to the forbidden schemas: no USAGE, no table it may read or write there."
            "Nothing.",
        ReachesForbidden = Fail "roles.reaches-forbidden"
            "The role reaches into a forbidden schema: USAGE, a table it may read or write, or one it owns through a role."
            "Revoke the privileges the message lists.",
        ForbiddenMisnamed = Fail "roles.forbidden-misnamed"
            "A forbidden schema does not exist, and another name is close to it: the scenario probably misnamed the one it meant."
            "Fix the schema's name in `forbidden_schemas`.",
        NoElevatedAttribute = Pass "roles.no-elevated-attribute"
            "The role has no elevated attribute (superuser, createrole, createdb, bypassrls, replication), or only accepted ones."
            "Nothing.",
        ElevatedAttribute = Fail(acceptable) "roles.elevated-attribute"
            "The role has an elevated attribute the scenario does not accept (superuser, bypassrls...), or an accepted one it no longer has."
            "`ALTER ROLE ... NOSUPERUSER NOBYPASSRLS ...` in the source, or accept it in `accept` with why.",
        NoElevatedMembership = Pass "roles.no-elevated-membership"
            "The role is a member of no role that reads or writes server files or all data, nor of one with an elevated attribute, but accepted ones."
            "Nothing.",
        ElevatedMembership = Fail(acceptable) "roles.elevated-membership"
            "The role is a member of a role with server access or an elevated attribute: it can `SET ROLE` to it and have its powers."
            "Revoke the membership, or accept it in `accept` with why.",
        NothingBeyond = Pass "roles.nothing-beyond"
            "With `exact`, the role holds no table privilege the scenario does not list."
            "Nothing.",
        BeyondListed = Fail "roles.beyond-listed"
            "With `exact`, the role holds table privileges the scenario does not list."
            "Revoke them, or list them if the application needs them.",
        NoDefinerDoor = Pass "roles.no-definer-door"
            "The role runs no SECURITY DEFINER function of an elevated role that does whatever its caller says, but accepted ones."
            "Nothing.",
        DefinerDoor = Fail(acceptable) "roles.definer-door"
            "The role can run SQL of its choosing with another role's powers, through a SECURITY DEFINER function (dynamic SQL, or code that changes since its acceptance)."
            "Make the function run fixed SQL, revoke EXECUTE, or `accept` it with the sha256 of its code and why.",
        NoForbiddenPath = Pass "roles.no-forbidden-path"
            "No view or SECURITY DEFINER function the role may use reads a forbidden schema, but accepted ones."
            "Nothing.",
        ForbiddenPath = Fail(acceptable) "roles.forbidden-path"
            "The role reads a forbidden schema through a view or a SECURITY DEFINER function of another role."
            "Revoke the role's access to the view or function, or `accept` it with why.",
        CouldNotRead = Error "roles.could-not-read"
            "pgdrill could not read the role's attributes, privileges or memberships from the catalog."
            "Read the database's answer in the message.",
    }
}

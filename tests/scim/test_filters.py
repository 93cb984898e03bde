"""The RFC 7644 §3.4.2.2 filter grammar: parsing (precedence, value paths, literals, errors)
and evaluation against the store over HTTP (case rules per attribute)."""

from __future__ import annotations

import pytest

from broker.core import query as q
from broker.scim import filters as f
from broker.scim.errors import ScimError
from broker.scim.schema import GROUP, USER

A = f.AttrRef


@pytest.mark.parametrize(
    "text, expected",
    [
        ('userName eq "bjensen"', f.Cmp(A(None, "userName"), "eq", "bjensen")),
        ('userName Eq "x"', f.Cmp(A(None, "userName"), "eq", "x")),
        ("title pr", f.Pr(A(None, "title"))),
        ("active eq true", f.Cmp(A(None, "active"), "eq", True)),
        ('active eq "true"', f.Cmp(A(None, "active"), "eq", "true")),
        ("x eq null", f.Cmp(A(None, "x"), "eq", None)),
        ("n gt 10", f.Cmp(A(None, "n"), "gt", 10)),
        ("n le 1.5", f.Cmp(A(None, "n"), "le", 1.5)),
        ('name.familyName co "O\'Malley"', f.Cmp(A(None, "name", "familyName"), "co", "O'Malley")),
        ('s sw "a\\"b"', f.Cmp(A(None, "s"), "sw", 'a"b')),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            f.Cmp(A(None, "meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
        ),
        (
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"',
            f.Cmp(
                A("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber"),
                "eq",
                "7",
            ),
        ),
        (
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"',
            f.Cmp(
                A("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"),
                "eq",
                "m",
            ),
        ),
        # Precedence: and binds tighter than or; not tighter than and (RFC 7644 §3.4.2.2).
        (
            "a eq 1 or b eq 2 and c eq 3",
            f.Either(
                f.Cmp(A(None, "a"), "eq", 1),
                f.Both(f.Cmp(A(None, "b"), "eq", 2), f.Cmp(A(None, "c"), "eq", 3)),
            ),
        ),
        (
            "a eq 1 and b eq 2 or c eq 3",
            f.Either(
                f.Both(f.Cmp(A(None, "a"), "eq", 1), f.Cmp(A(None, "b"), "eq", 2)),
                f.Cmp(A(None, "c"), "eq", 3),
            ),
        ),
        (
            "(a eq 1 or b eq 2) and c eq 3",
            f.Both(
                f.Either(f.Cmp(A(None, "a"), "eq", 1), f.Cmp(A(None, "b"), "eq", 2)),
                f.Cmp(A(None, "c"), "eq", 3),
            ),
        ),
        ("not (a pr) and b pr", f.Both(f.Neg(f.Pr(A(None, "a"))), f.Pr(A(None, "b")))),
        (
            "a pr AND NOT (b pr) OR c pr",
            f.Either(f.Both(f.Pr(A(None, "a")), f.Neg(f.Pr(A(None, "b")))), f.Pr(A(None, "c"))),
        ),
        (
            'emails[type eq "work" and value co "@example.com"]',
            f.ValuePath(
                A(None, "emails"),
                f.Both(
                    f.Cmp(A(None, "type"), "eq", "work"),
                    f.Cmp(A(None, "value"), "co", "@example.com"),
                ),
            ),
        ),
        (
            'emails[type eq "work" and primary eq true].value eq "a@b.c"',
            f.ValuePath(
                A(None, "emails"),
                f.Both(
                    f.Both(
                        f.Cmp(A(None, "type"), "eq", "work"), f.Cmp(A(None, "primary"), "eq", True)
                    ),
                    f.Cmp(A(None, "value"), "eq", "a@b.c"),
                ),
            ),
        ),
        (
            'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
            f.Both(
                f.Cmp(A(None, "userType"), "eq", "Employee"),
                f.Either(
                    f.Cmp(A(None, "emails"), "co", "example.com"),
                    f.Cmp(A(None, "emails", "value"), "co", "example.org"),
                ),
            ),
        ),
    ],
)
def test_parse(text, expected):
    assert f.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "userName",
        "userName eq",
        'userName xx "a"',
        "(a eq 1",
        "a eq 1)",
        'a eq "open',
        "a eq 1 and",
        "a eq 1 or or b eq 2",
        "emails[type eq 1",
        '"x" eq 1',
        "a eq bare",
        "emails[type eq 1]] pr",
        "a eq 1 b eq 2",
        "a" * 5000 + " pr",
    ],
)
def test_invalid_filters(text):
    with pytest.raises(ScimError) as caught:
        f.parse(text)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidFilter"


def test_resolution_uses_indexed_columns_and_case_rules():
    user_name = f.to_query(f.parse('USERNAME eq "A"'), USER)
    assert user_name == q.Compare(q.Field(column="user_name"), "eq", "A")
    external = f.to_query(f.parse('externalId eq "A"'), USER)
    assert external == q.Compare(q.Field(column="external_id", case_exact=True), "eq", "A")
    emails = f.to_query(f.parse('emails[type eq "work"].value eq "x"'), USER)
    assert isinstance(emails, q.Any) and emails.path == ("emails",)
    members = f.to_query(f.parse('members[value eq "usr_1"]'), GROUP)
    assert members == q.Compare(q.Field(column="member", case_exact=True), "eq", "usr_1")
    with pytest.raises(ScimError):
        f.to_query(f.parse("active gt true"), USER)
    with pytest.raises(ScimError):
        f.to_query(f.parse('members[display eq "x"]'), GROUP)


def test_patch_paths():
    path = f.parse_path('emails[type eq "work"].value')
    assert path.ref.name == "emails" and path.sub == "value"
    path = f.parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
    assert path.ref.uri.endswith(":User") and path.ref.name == "manager"
    with pytest.raises(ScimError) as caught:
        f.parse_path("emails[type eq ")
    assert caught.value.scim_type == "invalidPath"


@pytest.fixture
async def people(scim):
    made = {}
    for name, given, family, dept, etype, active in [
        ("Ann@Acme.test", "Ann", "Lee", "Sales", "work", True),
        ("bob@acme.test", "Bob", "O'Neil", "R&D", "home", True),
        ("cy@acme.test", "Cy", "Lee", "Sales", "work", False),
        ("dee_x@other.test", "Dee", "Park", None, "work", True),
    ]:
        extra = {
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": name.lower(), "type": etype, "primary": True}],
            "active": active,
            "externalId": f"ext-{given}",
            "title": given if given != "Dee" else "",
        }
        if dept:
            extra["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = {
                "department": dept
            }
        made[given] = await scim.create_user(name, **extra)
    return made


@pytest.mark.parametrize(
    "text, names",
    [
        ('userName eq "ann@acme.test"', {"Ann"}),  # userName is caseExact=false
        ('userName eq "ANN@ACME.TEST"', {"Ann"}),
        ('externalId eq "ext-ann"', set()),  # externalId is caseExact=true
        ('externalId eq "ext-Ann"', {"Ann"}),
        ('name.familyName eq "lee"', {"Ann", "Cy"}),
        ('name.familyName co "\'"', {"Bob"}),
        ('userName sw "dee_"', {"Dee"}),  # _ is not a wildcard
        ('userName sw "de%"', set()),  # % is not a wildcard
        ('userName ew "@acme.test"', {"Ann", "Bob", "Cy"}),
        ("active eq false", {"Cy"}),
        ('active eq true and name.familyName eq "Lee"', {"Ann"}),
        ('name.familyName eq "Lee" or userName sw "bob" and active eq false', {"Ann", "Cy"}),
        ('(name.familyName eq "Lee" or userName sw "bob") and active eq true', {"Ann", "Bob"}),
        ('not (name.familyName eq "Lee")', {"Bob", "Dee"}),
        ('emails[type eq "work"]', {"Ann", "Cy", "Dee"}),
        ('emails[type eq "work" and value ew "other.test"]', {"Dee"}),
        ('emails[type eq "home"].value co "bob"', {"Bob"}),
        ('emails.value eq "cy@acme.test"', {"Cy"}),
        (
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"',
            {"Ann", "Cy"},
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
            {"Ann", "Bob", "Cy"},
        ),
        ("title pr", {"Ann", "Bob", "Cy"}),  # "" is not present
        ('meta.created gt "2000-01-01T00:00:00Z"', {"Ann", "Bob", "Cy", "Dee"}),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
        ('name.givenName gt "B" and name.givenName lt "D"', {"Bob", "Cy"}),
        ('userName ne "ann@acme.test"', {"Bob", "Cy", "Dee"}),
    ],
)
async def test_filters_against_the_store(scim, people, text, names):
    status, doc, _ = await scim.call("GET", "/Users", params={"filter": text})
    assert status == 200, doc
    found = {r["name"]["givenName"] for r in doc["Resources"]}
    assert found == names
    assert doc["totalResults"] == len(names)


async def test_invalid_filter_over_http(scim, people):
    status, doc, _ = await scim.call("GET", "/Users", params={"filter": "userName eq"})
    assert status == 400 and doc["scimType"] == "invalidFilter"
    assert doc["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]

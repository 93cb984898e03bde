"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Written by hand so that it documents; tests/api/test_openapi.py keeps it true (every
route of broker.api.ROUTES is described and nothing else is) and schemathesis checks
live answers against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.web.services import SERVICES

_S = dict[str, Any]


def _nullable(kind: str, **extra: Any) -> _S:
    return {"type": [kind, "null"], **extra}


def _ref(name: str) -> _S:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> _S:
    return {
        "type": "object",
        "required": ["object", "data", "next_cursor", "has_more"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref(name)},
            "next_cursor": _nullable("string", description="Pass as `after` to continue."),
            "has_more": {"type": "boolean"},
        },
    }


_TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, _S] = {
    "Error": {
        "type": "object",
        "required": ["error", "error_description"],
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
            "correlation_id": {"type": "string"},
        },
    },
    "Event": {
        "type": "object",
        "required": ["object", "id", "type", "organization_id", "created_at", "data"],
        "properties": {
            "object": {"const": "event"},
            "id": {"type": "string", "pattern": "^evt_"},
            "type": {"type": "string"},
            "organization_id": _nullable("string"),
            "created_at": _TIME,
            "data": {"type": "object", "description": "The full current object."},
            "cursor": {"type": "string", "description": "Opaque; resume after this event."},
        },
    },
    "EventList": _list_of("Event"),
    "Domain": {
        "type": "object",
        "required": ["id", "domain", "state"],
        "properties": {
            "id": {"type": "string"},
            "domain": {"type": "string"},
            "state": {"enum": ["pending", "verified", "failed"]},
            "verified_at": _nullable("string", format="date-time"),
        },
    },
    "ConnectionSummary": {
        "type": "object",
        "required": ["id", "type", "state"],
        "properties": {
            "id": {"type": "string"},
            "type": {"enum": ["saml", "oidc"]},
            "preset": {"type": "string"},
            "name": {"type": "string"},
            "state": {"enum": ["draft", "active", "inactive"]},
        },
    },
    "Organization": {
        "type": "object",
        "required": [
            "object",
            "id",
            "name",
            "sso_enabled",
            "directory_sync_enabled",
            "default_seat",
            "domains",
            "connections",
        ],
        "properties": {
            "object": {"const": "organization"},
            "id": {"type": "string", "pattern": "^org_"},
            "name": {"type": "string"},
            "external_id": _nullable("string"),
            "sso_enabled": {
                "type": "boolean",
                "description": "When true, password sign-in must be disabled.",
            },
            "directory_sync_enabled": {"type": "boolean"},
            "default_seat": {"enum": ["full", "basic"]},
            "default_role": {"type": "string"},
            "domains": {"type": "array", "items": _ref("Domain")},
            "connections": {"type": "array", "items": _ref("ConnectionSummary")},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "OrganizationList": _list_of("Organization"),
    "Directory": {
        "type": "object",
        "required": ["object", "id", "organization_id", "state"],
        "properties": {
            "object": {"const": "directory"},
            "id": {"type": "string", "pattern": "^dir_"},
            "organization_id": {"type": "string"},
            "state": {"enum": ["active", "inactive"]},
            "type": {"const": "scim_v2"},
            "base_path": {"type": "string"},
            "scim_base_url": {"type": "string"},
            "previous_token_valid_until": _nullable("number"),
        },
    },
    "DirectoryList": _list_of("Directory"),
    "DirectoryUser": {
        "type": "object",
        "required": [
            "object",
            "id",
            "organization_id",
            "user_name",
            "state",
            "role",
            "seat",
            "groups",
            "raw_attributes",
        ],
        "properties": {
            "object": {"const": "directory_user"},
            "id": {"type": "string", "pattern": "^usr_"},
            "directory_id": _nullable("string"),
            "organization_id": {"type": "string"},
            "idp_id": _nullable("string"),
            "external_id": _nullable("string"),
            "user_name": {"type": "string"},
            "email": _nullable("string"),
            "emails": {"type": "array"},
            "first_name": _nullable("string"),
            "last_name": _nullable("string"),
            "state": {"enum": ["active", "inactive", "deleted"]},
            "role": {"type": "object", "properties": {"slug": {"type": "string"}}},
            "seat": {"enum": ["full", "basic"]},
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                },
            },
            "custom_attributes": {"type": "object"},
            "raw_attributes": {"type": "object"},
            "version": {"type": "integer"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "DirectoryUserList": _list_of("DirectoryUser"),
    "DirectoryGroup": {
        "type": "object",
        "required": ["object", "id", "organization_id", "name", "member_count"],
        "properties": {
            "object": {"const": "directory_group"},
            "id": {"type": "string", "pattern": "^grp_"},
            "directory_id": _nullable("string"),
            "organization_id": {"type": "string"},
            "external_id": _nullable("string"),
            "name": {"type": "string"},
            "member_count": {"type": "integer"},
            "raw_attributes": {"type": "object"},
            "version": {"type": "integer"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "DirectoryGroupList": _list_of("DirectoryGroup"),
    "GroupMember": {
        "type": "object",
        "required": ["id", "user_name", "state"],
        "properties": {
            "object": {"const": "directory_user"},
            "id": {"type": "string"},
            "user_name": {"type": "string"},
            "email": _nullable("string"),
            "state": {"enum": ["active", "inactive", "deleted"]},
        },
    },
    "DirectoryGroupWithMembers": {
        "allOf": [
            _ref("DirectoryGroup"),
            {
                "type": "object",
                "required": ["members"],
                "properties": {"members": _list_of("GroupMember")},
            },
        ],
    },
    "WebhookEndpoint": {
        "type": "object",
        "required": ["object", "client_id", "url", "state"],
        "properties": {
            "object": {"const": "webhook_endpoint"},
            "client_id": {"type": "string"},
            "url": {"type": "string"},
            "state": {"enum": ["ok", "retrying", "failing"]},
            "acked_event_seq": {"type": "integer"},
            "next_event_id": _nullable("string"),
            "consecutive_failures": {"type": "integer"},
            "failing_since": _nullable("string", format="date-time"),
            "next_attempt_at": _nullable("string", format="date-time"),
            "last_success_at": _nullable("string", format="date-time"),
            "last_error": _nullable("string"),
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["object", "id", "event_id", "kind", "status"],
        "properties": {
            "object": {"const": "webhook_delivery"},
            "id": {"type": "string", "pattern": "^dlv_"},
            "event_id": {"type": "string"},
            "event_type": {"type": "string"},
            "kind": {"enum": ["stream", "resend"]},
            "status": {"enum": ["pending", "succeeded", "failed"]},
            "attempt": {"type": "integer"},
            "url": _nullable("string"),
            "http_status": _nullable("integer"),
            "latency_ms": _nullable("number"),
            "response_excerpt": _nullable("string"),
            "error": _nullable("string"),
            "created_at": _TIME,
            "finished_at": _nullable("string", format="date-time"),
        },
    },
    "WebhookDeliveryList": _list_of("WebhookDelivery"),
    "ResendRequest": {
        "type": "object",
        "required": ["event_id"],
        "properties": {"event_id": {"type": "string", "pattern": "^evt_"}},
    },
}


def _json(schema: _S, description: str) -> _S:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Malformed parameters."),
    "401": _json(_ref("Error"), "No valid client credentials or access token."),
}
_NOT_FOUND = {"404": _json(_ref("Error"), "Unknown, or not bound to this client.")}

_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}

_DIR_AFTER = {
    "name": "after",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "pattern": "^dc_[A-Za-z0-9_-]+$"},
    "description": "Cursor from a previous page.",
}


def _op(
    op_id: str,
    summary: str,
    ok: _S,
    *,
    parameters: list[_S] | None = None,
    not_found: bool = False,
    status: str = "200",
    body: _S | None = None,
) -> _S:
    responses = {status: ok, **_ERRORS, **(_NOT_FOUND if not_found else {})}
    op: _S = {
        "operationId": op_id,
        "summary": summary,
        "parameters": parameters or [],
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _path_param(name: str) -> _S:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


PATHS: dict[str, _S] = {
    "/events": {
        "get": _op(
            "listEvents",
            "Events in commit order after a cursor.",
            _json(_ref("EventList"), "A page of events."),
            parameters=[
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^evc_[0-9a-f]{16}$"},
                    "description": "Cursor from a previous page; omit to start at the oldest.",
                },
                _LIMIT,
                {
                    "name": "types",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Comma-separated event types.",
                },
                {
                    "name": "organization_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            not_found=True,
        )
    },
    "/organizations": {
        "get": _op(
            "listOrganizations",
            "Organizations this client serves.",
            _json(_ref("OrganizationList"), "Every bound organization."),
        )
    },
    "/organizations/{organization_id}": {
        "get": _op(
            "getOrganization",
            "An organization with domains, connections and policy.",
            _json(_ref("Organization"), "The organization."),
            parameters=[_path_param("organization_id")],
            not_found=True,
        )
    },
    "/directories": {
        "get": _op(
            "listDirectories",
            "The SCIM directories of the organizations this client serves.",
            _json(_ref("DirectoryList"), "Directories."),
        )
    },
    "/directories/{directory_id}/users": {
        "get": _op(
            "listDirectoryUsers",
            "Users of a directory (deleted ones excluded), by id.",
            _json(_ref("DirectoryUserList"), "A page of users."),
            parameters=[
                _path_param("directory_id"),
                _DIR_AFTER,
                _LIMIT,
                {
                    "name": "group",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Group id.",
                },
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": ["active", "inactive"]},
                },
                {"name": "email", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            not_found=True,
        )
    },
    "/directories/{directory_id}/groups": {
        "get": _op(
            "listDirectoryGroups",
            "Groups of a directory, by id.",
            _json(_ref("DirectoryGroupList"), "A page of groups."),
            parameters=[_path_param("directory_id"), _DIR_AFTER, _LIMIT],
            not_found=True,
        )
    },
    "/users/{user_id}": {
        "get": _op(
            "getDirectoryUser",
            "A user with groups, role, seat and raw attributes.",
            _json(_ref("DirectoryUser"), "The user."),
            parameters=[_path_param("user_id")],
            not_found=True,
        )
    },
    "/groups/{group_id}": {
        "get": _op(
            "getDirectoryGroup",
            "A group with a page of its members.",
            _json(_ref("DirectoryGroupWithMembers"), "The group."),
            parameters=[_path_param("group_id"), _DIR_AFTER, _LIMIT],
            not_found=True,
        )
    },
    "/webhook_endpoint": {
        "get": _op(
            "getWebhookEndpoint",
            "This client's webhook endpoint and its delivery state.",
            _json(_ref("WebhookEndpoint"), "The endpoint."),
            not_found=True,
        )
    },
    "/webhook_endpoint/deliveries": {
        "get": _op(
            "listWebhookDeliveries",
            "The endpoint's delivery log, newest first.",
            _json(_ref("WebhookDeliveryList"), "Recent attempts."),
            parameters=[_LIMIT],
            not_found=True,
        )
    },
    "/webhook_endpoint/resend": {
        "post": _op(
            "resendWebhook",
            "Queue one event to be sent again to the endpoint.",
            _json(_ref("WebhookDelivery"), "Queued."),
            status="202",
            body=_ref("ResendRequest"),
            not_found=True,
        )
    },
}


def document(server_url: str) -> _S:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Exec Identity Broker API",
            "version": "1",
            "description": (
                "Server-to-server API for Exec: the event feed (also pushed by signed "
                "webhooks, Standard Webhooks), organizations and policy, the directory. "
                "Authenticate as the registered OIDC client: HTTP Basic client_id:secret, "
                "or a bearer access token (client credentials grant, scope `api`). "
                "A client sees only the organizations it is bound to."
            ),
        },
        "servers": [{"url": server_url.rstrip("/") + "/api/v1"}],
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[SERVICES].issuer))

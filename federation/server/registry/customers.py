"""Customers (tenants): looked up by id, created on first use by an operator or the server."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from federation.server.registry.audit import record_audit
from federation.server.registry.errors import NotFoundError, RegistryConfigError
from federation.server.registry.models import Customer

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Customer ids and model versions: 1-64 letters, digits, ``.``, ``_`` or ``-``."""
_ID = re.compile(ID_PATTERN)


def check_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a valid customer id or model version.

    Raises
    ------
    RegistryConfigError
        If it does not match :data:`ID_PATTERN`.
    """
    if not isinstance(value, str) or not _ID.match(value):
        raise RegistryConfigError(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return value


def get_customer(session: Session, customer_id: str) -> Customer:
    """Return the customer ``customer_id``.

    Raises
    ------
    NotFoundError
        If there is no such customer.
    """
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError("customer", customer_id)
    return customer


def ensure_customer(session: Session, customer_id: str, *, actor: str) -> Customer:
    """Return the customer ``customer_id``, adding it (and an audit entry) if it is new.

    The new row is added to ``session`` but not committed: the caller commits it together with
    the change that needed the customer.
    """
    check_identifier(customer_id, "customer id")
    customer = session.get(Customer, customer_id)
    if customer is None:
        customer = Customer(id=customer_id)
        session.add(customer)
        record_audit(
            session,
            actor=actor,
            action="customer.created",
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
        )
        session.flush()
    return customer

"""A pydantic model the validate tests import by path (tests/ is on sys.path under pytest)."""

from pydantic import BaseModel


class Order(BaseModel):
    order_id: int
    qty: int

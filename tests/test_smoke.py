from __future__ import annotations

def test_add_customer(crm):
    c = crm.add_customer("A", phone="13800000000")
    assert crm.get_customer(c.id).phone == "+8613800000000"

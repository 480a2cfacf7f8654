"""Deterministic rows: customers with orders (aware datetimes, decimals with their scale,
notes with _ and %, JSON), tags made with bulk_create and added to orders (M2M), and a
user of django.contrib.auth."""
import datetime
import decimal

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from shop.models import Customer, Order, Tag

UTC = datetime.timezone.utc


class Command(BaseCommand):
    def handle(self, *args, **options):
        for i in range(1, 31):
            c = Customer.objects.create(
                email=f"c{i}@example.com", name=f"Customer {i}", active=i % 4 != 0,
                joined=datetime.datetime(2011, 12, 22, i % 24, i, tzinfo=UTC))
            for k in range(1, 4):
                Order.objects.create(
                    customer=c, total=decimal.Decimal(f"{i * k}.{(i + k) % 10}0"),
                    placed=datetime.datetime(2024, 1, k, 8, i, 30, 250000, tzinfo=UTC),
                    note=["a_b", "50%", "plain"][k - 1], data={"k": k, "tags": ["x", str(i)]})
        tags = Tag.objects.bulk_create(
            [Tag(label=label, kind=kind) for label in ["t_1", "t%2", "plain"] for kind in ["a", "b"]])
        for o in Order.objects.order_by("id"):
            o.tags.add(*[t for t in tags if (o.id + t.id) % 3 == 0])
        Customer.objects.filter(id__lte=5).update(code="vip_")
        User.objects.create_user("alice", "alice@example.com", "pw",
                                 date_joined=datetime.datetime(2020, 2, 29, 12, 0, tzinfo=UTC))
        self.stdout.write("seeded")

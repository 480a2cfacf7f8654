"""What the app shows: every customer and order as the ORM returns them (datetimes with
their zone, decimals with their scale), a few lookups, aggregates, and a write."""
import datetime
import decimal

from django.contrib.auth.models import User
from django.db.models import Count, Max, Sum
from django.core.management.base import BaseCommand

from shop.models import Customer, Order, Tag


class Command(BaseCommand):
    def handle(self, *args, **options):
        out = self.stdout
        for c in Customer.objects.order_by("id"):
            out.write(f"{c.id} {c.email} {c.name} {c.joined!r} {c.active}")
        for o in Order.objects.order_by("id"):
            out.write(f"{o.id} {o.customer_id} {o.total!r} {o.placed.isoformat()} {o.note!r} {o.data!r}")
        for o in Order.objects.order_by("id")[:12]:
            out.write(f"tags {o.id} {[(t.id, t.label, t.kind) for t in o.tags.order_by('id')]!r}")
        out.write(f"t_: {Order.objects.filter(tags__label__startswith='t_').distinct().count()}")
        out.write(f"vip_: {list(Customer.objects.filter(code__startswith='vip_').values_list('id', flat=True))}")
        out.write(f"tag ids {list(Tag.objects.order_by('id').values_list('id', 'label'))!r}")
        out.write(f"a_: {Order.objects.filter(note__startswith='a_').count()}")
        out.write(f"50%: {Order.objects.filter(note__contains='%').count()}")
        agg = Order.objects.aggregate(n=Count('id'), s=Sum('total'), m=Max('placed'))
        out.write(f"aggregate {agg!r}")
        top = Customer.objects.annotate(n=Count('orders')).order_by('-n', 'id')[:3]
        out.write(f"top {[(c.id, c.n) for c in top]!r}")
        u = User.objects.get(username="alice")
        out.write(f"user {u.email} {u.date_joined!r} {u.check_password('pw')}")
        new = Customer.objects.create(email="new@example.com", name="New", joined=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
        o = Order.objects.create(customer=new, total=decimal.Decimal("1.50"), placed=new.joined, data={})
        out.write(f"new ids {new.id} {o.id}")

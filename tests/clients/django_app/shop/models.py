from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=60)
    joined = models.DateTimeField()
    active = models.BooleanField(default=True)
    code = models.CharField(max_length=20, db_index=True, default="")


class Tag(models.Model):
    label = models.CharField(max_length=30, db_index=True)
    kind = models.CharField(max_length=10, default="plain")

    class Meta:
        unique_together = [("label", "kind")]


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    placed = models.DateTimeField()
    note = models.CharField(max_length=80, blank=True)
    data = models.JSONField(default=dict)
    tags = models.ManyToManyField(Tag)

from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=60)
    joined = models.DateTimeField()
    active = models.BooleanField(default=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    placed = models.DateTimeField()
    note = models.CharField(max_length=50, blank=True)
    data = models.JSONField(default=dict)

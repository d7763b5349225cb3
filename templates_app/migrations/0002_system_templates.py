"""Ship a useful set of system templates and their categories (read-only for users)."""

from django.db import migrations

CATEGORIES = [
    ("sales", "Sales", "Revenue, orders and their trends", 1),
    ("customers", "Customers", "Who buys, where, how often", 2),
    ("operations", "Operations", "Volumes, statuses and throughput", 3),
]

PERIODS = ["today", "yesterday", "last 7 days", "last 30 days", "last 90 days", "this week", "last week",
           "this month", "last month", "this quarter", "last quarter", "this year", "last year"]

TEMPLATES = [
    {
        "category": "sales",
        "name": "Metric by dimension over a period",
        "description": "A total broken down by one dimension, e.g. sales by region for the last quarter.",
        "template_text": "Show me total {{metric}} by {{dimension}} for the {{time_period}}",
        "parameters": [
            {"name": "metric", "type": "string", "required": True, "default": "sales",
             "description": "What to add up: sales, revenue, quantity…"},
            {"name": "dimension", "type": "string", "required": True, "default": "region",
             "description": "What to group by: region, category, status…"},
            {"name": "time_period", "type": "enum", "required": False, "default": "last quarter",
             "allowed_values": PERIODS, "description": "Relative period"},
        ],
    },
    {
        "category": "sales",
        "name": "Top N by a measure",
        "description": "The best performers by a measure over a period.",
        "template_text": "Top {{limit}} {{entity}} by {{metric}} in the {{time_period}}",
        "parameters": [
            {"name": "limit", "type": "number", "required": False, "default": 10, "description": "How many"},
            {"name": "entity", "type": "string", "required": True, "default": "products",
             "description": "What to rank: products, customers, regions…"},
            {"name": "metric", "type": "string", "required": False, "default": "sales", "description": "Ranking measure"},
            {"name": "time_period", "type": "enum", "required": False, "default": "last 30 days",
             "allowed_values": PERIODS, "description": "Relative period"},
        ],
    },
    {
        "category": "sales",
        "name": "Monthly trend",
        "description": "A measure month by month.",
        "template_text": "Show total {{metric}} by month for the {{time_period}}",
        "parameters": [
            {"name": "metric", "type": "string", "required": False, "default": "sales", "description": "Measure"},
            {"name": "time_period", "type": "enum", "required": False, "default": "last year",
             "allowed_values": ["this year", "last year", "last 90 days"], "description": "Relative period"},
        ],
    },
    {
        "category": "operations",
        "name": "Count over a period",
        "description": "How many records of a kind in a period.",
        "template_text": "How many {{entity}} in the {{time_period}}",
        "parameters": [
            {"name": "entity", "type": "string", "required": True, "default": "orders", "description": "What to count"},
            {"name": "time_period", "type": "enum", "required": False, "default": "last 7 days",
             "allowed_values": PERIODS, "description": "Relative period"},
        ],
    },
    {
        "category": "operations",
        "name": "Breakdown by status",
        "description": "Counts grouped by a status-like column.",
        "template_text": "Number of {{entity}} by {{dimension}}",
        "parameters": [
            {"name": "entity", "type": "string", "required": True, "default": "orders", "description": "What to count"},
            {"name": "dimension", "type": "string", "required": False, "default": "status",
             "description": "Group by"},
        ],
    },
    {
        "category": "customers",
        "name": "Average per segment",
        "description": "An average of a measure for one segment value.",
        "template_text": "Average {{metric}} for {{segment}} customers",
        "parameters": [
            {"name": "metric", "type": "string", "required": False, "default": "order value", "description": "Measure"},
            {"name": "segment", "type": "string", "required": True, "description": "A value such as a segment name"},
        ],
    },
]


def seed(apps, schema_editor):
    Category = apps.get_model("templates_app", "TemplateCategory")
    Template = apps.get_model("templates_app", "PromptTemplate")
    categories = {}
    for slug, name, description, position in CATEGORIES:
        categories[slug], _ = Category.objects.update_or_create(
            slug=slug, defaults={"name": name, "description": description, "position": position}
        )
    for spec in TEMPLATES:
        Template.objects.update_or_create(
            is_system=True,
            name=spec["name"],
            defaults={
                "description": spec["description"],
                "category": categories[spec["category"]],
                "template_text": spec["template_text"],
                "parameters": spec["parameters"],
                "is_public": True,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("templates_app", "PromptTemplate").objects.filter(is_system=True).delete()


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]

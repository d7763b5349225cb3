# Executions recorded before 0003 get their spend: the sums of their generated queries' tokens and cost,
# as the pipeline now keeps them. One UPDATE; executions without a generated query keep 0.

from django.db import migrations
from django.db.models import Exists, OuterRef, Subquery, Sum


def backfill_spend(apps, schema_editor):
    PromptExecution = apps.get_model('prompts', 'PromptExecution')
    GeneratedQuery = apps.get_model('prompts', 'GeneratedQuery')
    queries = GeneratedQuery.objects.filter(execution_id=OuterRef('pk')).order_by().values('execution_id')

    def total(field):
        return Subquery(queries.annotate(total=Sum(field)).values('total'))

    PromptExecution.objects.filter(Exists(queries)).update(
        tokens_in=total('tokens_in'), tokens_out=total('tokens_out'), cost=total('cost')
    )


class Migration(migrations.Migration):

    dependencies = [
        ('prompts', '0003_execution_analytics_fields'),
    ]

    operations = [
        migrations.RunPython(backfill_spend, migrations.RunPython.noop),
    ]

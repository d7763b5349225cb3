# Analytics columns on executions: spend summed from the generated queries (the pipeline keeps it, 0004 backfills
# it) and two database-generated keys, the prompt text's md5 and the grouping key of the dashboard's dimensions.
# The old analytics covering indexes go first (0005 replaces them), so the backfill has fewer indexes to update.

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('prompts', '0002_remove_promptexecution_exec_user_history_and_more'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='promptexecution',
            name='exec_ws_created',
        ),
        migrations.RemoveIndex(
            model_name='promptexecution',
            name='exec_user_created',
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='tokens_in',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='tokens_out',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='cost',
            field=models.FloatField(default=0),
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='prompt_hash',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.MD5('prompt_text'), output_field=models.CharField(max_length=32)),
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='analytics_key',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Concat('status', models.Value('|'), 'error_code', models.Value('|'), django.db.models.functions.comparison.Cast('template_id', models.TextField()), models.Value('|'), django.db.models.functions.comparison.Cast('data_source_ids', models.TextField()), models.Value('|'), 'ai_model', output_field=models.TextField()), output_field=models.TextField()),
        ),
    ]

# The prompt's md5 as a uuid (16 bytes) instead of its hex digest (33): a sixth smaller spread index, a cheaper
# hash to group top prompts by. A generated column can't be altered, so it is dropped and added again (one
# rewrite of the table), and the two indexes that carry it with it.

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('prompts', '0005_execution_analytics_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='promptexecution',
            name='exec_ws_window_spread',
        ),
        migrations.RemoveIndex(
            model_name='promptexecution',
            name='exec_user_window_spread',
        ),
        migrations.RemoveField(
            model_name='promptexecution',
            name='prompt_hash',
        ),
        migrations.AddField(
            model_name='promptexecution',
            name='prompt_hash',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.comparison.Cast(django.db.models.functions.text.MD5('prompt_text'), models.UUIDField()), output_field=models.UUIDField()),
        ),
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['workspace', 'created_at'], include=('user', 'id', 'ai_response_time_ms', 'query_execution_duration_ms', 'total_duration_ms', 'status', 'prompt_hash'), name='exec_ws_window_spread'),
        ),
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['user', 'created_at'], include=('workspace', 'id', 'ai_response_time_ms', 'query_execution_duration_ms', 'total_duration_ms', 'status', 'prompt_hash'), name='exec_user_window_spread'),
        ),
    ]

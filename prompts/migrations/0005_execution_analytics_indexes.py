# Covering indexes for query analytics (PostgreSQL INCLUDE; plain indexes elsewhere): per scope (a workspace's
# window, a user's window) one for the cube pass and one for the spread pass (durations, users, top prompts).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('prompts', '0004_backfill_execution_spend'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['workspace', 'created_at'], include=('rows_returned', 'total_duration_ms', 'query_execution_duration_ms', 'tokens_in', 'tokens_out', 'cost', 'analytics_key'), name='exec_ws_window_cube'),
        ),
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['workspace', 'created_at'], include=('user', 'id', 'ai_response_time_ms', 'query_execution_duration_ms', 'total_duration_ms', 'status', 'prompt_hash'), name='exec_ws_window_spread'),
        ),
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['user', 'created_at'], include=('workspace', 'rows_returned', 'total_duration_ms', 'query_execution_duration_ms', 'tokens_in', 'tokens_out', 'cost', 'analytics_key'), name='exec_user_window_cube'),
        ),
        migrations.AddIndex(
            model_name='promptexecution',
            index=models.Index(fields=['user', 'created_at'], include=('workspace', 'id', 'ai_response_time_ms', 'query_execution_duration_ms', 'total_duration_ms', 'status', 'prompt_hash'), name='exec_user_window_spread'),
        ),
    ]

"""Webhook notifications of alarm transitions (``cpkmon notify``, README "Notifications").

:mod:`~cpkmon.notify.config` reads the endpoint file and resolves secrets from the environment,
:mod:`~cpkmon.notify.formats` renders generic/Slack/Teams/DingTalk/WeCom requests,
:mod:`~cpkmon.notify.service` is the consumer-group process that delivers them at least once.
Outside the pure core: it uses aiokafka, aiohttp and prometheus_client.
"""

"""Tencent Cloud IM protocol: callback authentication, callback bodies, answers, REST."""

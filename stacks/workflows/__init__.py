"""One module per workflow. Each declares its stack with `@register`; the app builds every registered one."""

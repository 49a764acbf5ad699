"""washfin's services. Each is its own program with its own database; they share only ``shared``."""

"""Tasks of examples/fan_out_fan_in.yaml."""


def split():
    numbers = list(range(1, 10))
    return {"a": numbers[0:3], "b": numbers[3:6], "c": numbers[6:9]}


def square_sum(numbers):
    return sum(n * n for n in numbers)


def total(a, b, c):
    return float(a + b + c)

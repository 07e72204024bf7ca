"""local/engine/conditional_writes.py: DynamoDB conditional writes are atomic per item, as in DynamoDB."""
import threading
import uuid

import boto3
from botocore.exceptions import ClientError

WRITERS = 8


def test_concurrent_conditional_writes_on_one_item_let_exactly_one_through(engine):
    # Unpatched, moto checks the condition and then writes: several of the 8 writers got through.
    dynamodb = boto3.client("dynamodb", endpoint_url=engine.url, region_name=engine.region, **engine.credentials)
    table = f"conditional-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    for round_ in range(5):
        key = {"id": {"S": f"item-{round_}"}}
        dynamodb.put_item(TableName=table, Item={**key, "status": {"S": "PENDING"}})
        barrier, through = threading.Barrier(WRITERS), []

        def answer(who):
            barrier.wait()
            try:
                dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :done, answeredBy = :who",
                                     ConditionExpression="#s = :pending", ExpressionAttributeNames={"#s": "status"},
                                     ExpressionAttributeValues={":done": {"S": "DONE"}, ":pending": {"S": "PENDING"},
                                                                ":who": {"S": who}})
                through.append(who)
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ConditionalCheckFailedException"

        threads = [threading.Thread(target=answer, args=(f"caller-{n}",)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(through) == 1
        assert dynamodb.get_item(TableName=table, Key=key)["Item"]["answeredBy"]["S"] == through[0]

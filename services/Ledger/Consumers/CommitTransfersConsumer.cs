using System.Text.Json;
using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using FluentValidation;
using MassTransit;

namespace DataMarket.LedgerWorker.Consumers;

/// <summary>
/// Commits a <see cref="CommitTransfers"/> command with the message id as its inbox receipt, in the same
/// transaction as the transfers. The answer for a commit goes out through the ledger's outbox (so it is
/// sent if and only if the transfers committed); a rejection, which writes nothing but the receipt, is
/// published directly, again on every redelivery.
/// </summary>
public sealed class CommitTransfersConsumer(LedgerHost ledger, IValidator<CommitTransfers> validator, TimeProvider timeProvider) : IConsumer<CommitTransfers>
{
    /// <summary>This consumer's name in the inbox.</summary>
    public const string InboxConsumer = "ledger.commit-transfers";

    public async Task Consume(ConsumeContext<CommitTransfers> context)
    {
        var command = context.Message;
        var validation = await validator.ValidateAsync(command, context.CancellationToken);
        if (!validation.IsValid)
        {
            var detail = string.Join("; ", validation.Errors.Select(e => $"{e.PropertyName}: {e.ErrorMessage}"));
            await context.Publish(Rejected(command, "invalid_command", detail), context.CancellationToken);
            return;
        }

        var transfers = command.Transfers.Select(ToRequest).ToList();
        var committed = new TransfersCommitted
        {
            CommandId = command.CommandId,
            TransferIds = transfers.Select(t => t.Id).ToList(),
            CommittedAt = timeProvider.GetUtcNow(),
        };
        var database = await ledger.Database;
        var result = await database.Ledger.CommitAsync(
            transfers,
            new LedgerCommandOptions
            {
                Actor = command.Actor,
                CorrelationId = command.CommandId.ToString(),
                Inbox = new InboxReceipt(InboxConsumer, context.MessageId ?? command.CommandId),
                Publish = [committed],
            },
            context.CancellationToken);

        switch (result)
        {
            case { Status: LedgerStatus.Rejected or LedgerStatus.DuplicateMessage, Rejection: { } rejection }:
                await context.Publish(Rejected(command, ReasonName(rejection), result.Detail ?? rejection.ToString()), context.CancellationToken);
                break;
            case { Status: LedgerStatus.AlreadyCommitted }:
                // The same transfers under another message: nothing was written (no outbox row, and no inbox
                // receipt either, so a redelivery of this message is answered again, here).
                var original = await database.Ledger.GetTransferAsync(transfers[0].Id, context.CancellationToken);
                await context.Publish(
                    committed with { AlreadyCommitted = true, CommittedAt = original?.CreatedAt ?? committed.CommittedAt },
                    context.CancellationToken);
                break;
            default:
                // Committed: the outbox row written with the transfers carries the answer. A redelivery of a
                // committed message: the first delivery's outbox row did.
                break;
        }
    }

    internal static string ReasonName(LedgerRejection rejection) => JsonNamingPolicy.SnakeCaseLower.ConvertName(rejection.ToString());

    private static TransfersRejected Rejected(CommitTransfers command, string reason, string detail) =>
        new() { CommandId = command.CommandId, Reason = reason, Detail = detail };

    private static TransferRequest ToRequest(TransferLine line) => new()
    {
        Id = line.TransferId,
        Debit = AccountRef.Parse(line.DebitAccount),
        Credit = AccountRef.Parse(line.CreditAccount),
        Amount = line.Amount,
        Code = CommitTransfersValidator.Codes[line.Code],
        Pending = line.Pending,
        Reference = line.Reference,
    };
}

public sealed class CommitTransfersConsumerDefinition : ConsumerDefinition<CommitTransfersConsumer>
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<CommitTransfersConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        // The ledger already retries lost races itself; these cover a database that is briefly away.
        endpointConfigurator.UseMessageRetry(retry => retry.Intervals(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)));
    }
}

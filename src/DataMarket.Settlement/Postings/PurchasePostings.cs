using System.Security.Cryptography;
using System.Text;
using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.Settlement.Split;

namespace DataMarket.Settlement.Postings;

/// <summary>
/// The ledger transfers of a purchase's life, as <see cref="TransferLine"/>s for <see cref="CommitTransfers"/>. Ids
/// derive from the purchase and the line's role, so resending a batch commits it once. Zero amounts are left out.
/// <list type="bullet">
/// <item>Sale: the buyer's payment enters (payment clearing -> buyer), the fee goes to the platform and each
/// seller's share to its held account until the refund window ends.</item>
/// <item>Release: held shares become payable.</item>
/// <item>Refund (inside the window): every line of the sale reversed exactly, and the money leaves to the buyer's card.</item>
/// <item>Dispute of part of the sale while held: the disputed parts of the fee and of each share reversed, the rest stays held
/// (the release then releases what is left).</item>
/// </list>
/// </summary>
public static class PurchasePostings
{
    public static IReadOnlyList<TransferLine> Sale(Guid purchaseId, string buyerId, string currency, SplitResult split)
    {
        ArgumentNullException.ThrowIfNull(split);
        var buyer = AccountRef.Buyer(buyerId, currency).Id;
        var lines = new List<TransferLine>
        {
            Line(purchaseId, "charge", AccountRef.PaymentClearing(currency).Id, buyer, split.Gross, "charge"),
            Line(purchaseId, "fee", buyer, AccountRef.PlatformFees(currency).Id, split.Fee, "platform_fee"),
        };
        lines.AddRange(split.Shares.Select(s =>
            Line(purchaseId, $"share:{s.SellerId}", buyer, AccountRef.SellerHeld(s.SellerId, currency).Id, s.Amount, "allocation")));
        return lines.Where(l => l.Amount > 0).ToList();
    }

    public static IReadOnlyList<TransferLine> Release(Guid purchaseId, string currency, SplitResult split)
    {
        ArgumentNullException.ThrowIfNull(split);
        return split.Shares
            .Where(s => s.Amount > 0)
            .Select(s => Line(purchaseId, $"release:{s.SellerId}", AccountRef.SellerHeld(s.SellerId, currency).Id, AccountRef.SellerPayable(s.SellerId, currency).Id, s.Amount, "hold_release"))
            .ToList();
    }

    public static IReadOnlyList<TransferLine> Refund(Guid purchaseId, string buyerId, string currency, SplitResult split)
    {
        ArgumentNullException.ThrowIfNull(split);
        var buyer = AccountRef.Buyer(buyerId, currency).Id;
        var lines = split.Shares
            .Select(s => Line(purchaseId, $"refund:{s.SellerId}", AccountRef.SellerHeld(s.SellerId, currency).Id, buyer, s.Amount, "refund"))
            .ToList();
        lines.Add(Line(purchaseId, "refund:fee", AccountRef.PlatformFees(currency).Id, buyer, split.Fee, "refund"));
        lines.Add(Line(purchaseId, "refund:charge", buyer, AccountRef.PaymentClearing(currency).Id, split.Gross, "refund"));
        return lines.Where(l => l.Amount > 0).ToList();
    }

    /// <summary>
    /// A dispute for part of the sale while the shares are held: the disputed parts of the fee and of each held share
    /// go back to the buyer (<c>seller_held:S -> buyer</c>, <c>platform_fees -> buyer</c>) and the disputed amount
    /// leaves (<c>buyer -> payment_clearing</c>); the rest of each share stays held. Ids derive from the dispute.
    /// </summary>
    public static IReadOnlyList<TransferLine> HeldDispute(Guid purchaseId, string disputeId, string buyerId, string currency, DisputedParts parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var buyer = AccountRef.Buyer(buyerId, currency).Id;
        var lines = parts.Shares
            .Select(s => Line(purchaseId, $"dispute:{disputeId}:held:{s.SellerId}", AccountRef.SellerHeld(s.SellerId, currency).Id, buyer, s.Amount, "refund"))
            .ToList();
        lines.Add(Line(purchaseId, $"dispute:{disputeId}:held-fee", AccountRef.PlatformFees(currency).Id, buyer, parts.Fee, "refund"));
        lines.Add(Line(purchaseId, $"dispute:{disputeId}:held-charge", buyer, AccountRef.PaymentClearing(currency).Id, parts.Amount, "refund"));
        return lines.Where(l => l.Amount > 0).ToList();
    }

    /// <summary>A name-based (version 5 style, SHA-1) id: the same purchase and role always give the same transfer id.</summary>
    public static Guid TransferId(Guid purchaseId, string role)
    {
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes($"datamarket-settlement:{purchaseId:N}:{role}"));
        var bytes = hash.AsSpan(0, 16).ToArray();
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x50);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }

    private static TransferLine Line(Guid purchaseId, string role, string debit, string credit, long amount, string code) => new()
    {
        TransferId = TransferId(purchaseId, role),
        DebitAccount = debit,
        CreditAccount = credit,
        Amount = amount,
        Code = code,
        Reference = $"purchase:{purchaseId:N}",
    };
}

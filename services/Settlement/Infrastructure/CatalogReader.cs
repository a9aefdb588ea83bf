using DataMarket.Catalog.Model;
using DataMarket.ServiceDefaults.Storage;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.SettlementService.Infrastructure;

/// <summary>
/// Reads listings and valuations from the catalog's database (read-only; the catalog owns and writes it) and listing
/// data from the shared blob store, for quotes and downloads.
/// </summary>
public sealed class CatalogReader(CatalogDbContext db, ContentAddressedBlobStore blobs)
{
    public Task<Listing?> FindListingAsync(Guid listingId, CancellationToken cancellationToken) =>
        db.Listings.AsNoTracking().SingleOrDefaultAsync(l => l.Id == listingId, cancellationToken);

    /// <summary>The buyer's own valuation; someone else's reads as missing.</summary>
    public Task<ValuationRun?> FindValuationAsync(string buyerId, Guid valuationId, CancellationToken cancellationToken) =>
        db.Valuations.AsNoTracking().Include(v => v.Sellers).SingleOrDefaultAsync(v => v.Id == valuationId && v.BuyerId == buyerId, cancellationToken);

    public Stream OpenBlob(string blobId) => blobs.OpenRead(blobId);
}
